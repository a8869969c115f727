"""The plugin in a user's own MMDetection project, outside this repository: mmdet:: configs,
model-zoo checkpoints from torch's hub cache, the installed commands (no network)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, build, without_pretrained

BIN = Path(sys.executable).parent
#: A host that never resolves (RFC 2606): a model-zoo URL with no network, on every machine.
ZOO = "https://model-zoo.invalid/ds2d2-tests"


def _declared_commands() -> tuple[str, ...]:
    """The console scripts setup.py declares (its ``COMMANDS`` dict literal), so that a new
    command is checked here without editing this file."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "COMMANDS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMMANDS dict")


COMMANDS = _declared_commands()

USER_TEACHER = """
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
model = dict(bbox_head=dict(num_classes=4))
"""
USER_CONFIG = """
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
student = dict(_base_.model)
student['bbox_head'] = dict(student['bbox_head'], num_classes=4)
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student=student,
    teacher_config='teacher.py',
    teacher_ckpt='{zoo}/retinanet_r50_user.pth',
    distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0)))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='SyntheticAerialDataset', data_root='data/syn/',
                 ann_file='annotations/train.json', data_prefix=dict(img=''),
                 pipeline=pipeline))
train_cfg = dict(max_epochs=1, val_interval=10)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
""".replace("{zoo}", ZOO)


def command(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: run `pip install -e .` (make env does)")
    return str(path)


def run(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, **env))


def test_installed_commands_answer_help_from_another_folder(tmp_path):
    procs = {name: subprocess.Popen([command(name), "--help"], cwd=tmp_path, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name in COMMANDS}  # side by side: each start imports torch and mmdet
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, err[-2000:])
        assert out.startswith(f"usage: {name}"), (name, out[:200])


def hub_cache(torch_home: Path) -> Path:
    return torch_home / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def user_project(tmp_path_factory):
    """A user's project folder: their configs, data made by the installed command, a random
    R50 teacher 'from the model zoo' and random ImageNet R18 weights."""
    tmp_path = tmp_path_factory.mktemp("user")
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "teacher.py").write_text(USER_TEACHER)
    (project / "distill.py").write_text(USER_CONFIG)
    out = run([command("ds2d2-make-synthetic"), "--out", "data/syn", "--num-train", "4",
               "--num-val", "1", "--img-size", "96"], project)
    assert out.returncode == 0, out.stderr
    torch_home = tmp_path / "torch_home"
    hub_cache(torch_home).mkdir(parents=True)
    import torchvision
    from mmengine.config import Config
    from mmengine.runner.checkpoint import get_torchvision_models

    torch.manual_seed(0)
    resnet18 = get_torchvision_models()["resnet18"].rsplit("/", 1)[-1]
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               hub_cache(torch_home) / resnet18)
    teacher_model = without_pretrained(Config.fromfile(str(project / "teacher.py")).model
                                       .to_dict())
    teacher = build(teacher_model)
    return project, torch_home, teacher


def test_zoo_teacher_without_network_or_cache_stops_before_training(user_project):
    project, torch_home, _ = user_project
    url = f"{ZOO}/not_downloaded_yet.pth"
    out = run([command("ds2d2-train"), "distill.py", "--work-dir", "wd_offline", "--cfg-options",
               f"model.teacher_ckpt={url}"], project, TORCH_HOME=str(torch_home))
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    message = out.stderr
    assert url in message and "model.teacher_ckpt" in message
    assert str(hub_cache(torch_home) / "not_downloaded_yet.pth") in message
    assert "Traceback" not in message
    assert not (project / "wd_offline").exists()  # stopped before the runner made anything


def test_distillation_iteration_in_a_user_project_with_a_cached_zoo_teacher(user_project):
    """mmdet:: student and teacher, teacher checkpoint by URL from the hub cache, the installed
    ds2d2-train run from the user's folder; then the student exported and tested."""
    project, torch_home, teacher = user_project
    torch.save({"state_dict": teacher.state_dict(), "meta": {}},
               hub_cache(torch_home) / "retinanet_r50_user.pth")
    out = run([command("ds2d2-train"), "distill.py", "--work-dir", "wd"], project,
              TORCH_HOME=str(torch_home))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "loss_exp_low" in log and "loss_imp_full_cls" in log
    ckpt = project / "wd" / "epoch_1.pth"
    assert ckpt.is_file()
    out = run([command("ds2d2-export-student"), "wd/epoch_1.pth", "student.pth"], project)
    assert out.returncode == 0, out.stderr
    state = torch.load(project / "student.pth", weights_only=True)["state_dict"]
    assert "backbone.conv1.weight" in state and not any(k.startswith("student.") for k in state)


def test_package_scoped_teacher_config_is_built_in_its_scope():
    from ds2d2_mm.models.distillers.amplifiers import model_cfg_of
    from ds2d2_mm.utils.errors import ConfigError

    model = model_cfg_of("mmdet::retinanet/retinanet_r50_fpn_1x_coco.py", "teacher")
    assert model["_scope_"] == "mmdet" and model["backbone"]["depth"] == 50
    with pytest.raises(ConfigError, match="mmdet::retinanet/nope.py"):
        model_cfg_of("mmdet::retinanet/nope.py", "teacher")
    with pytest.raises(ConfigError, match="not found: 'teacher.py' .*working directory"):
        model_cfg_of("teacher.py", "teacher")


def test_wheel_ships_the_configs_and_the_commands(tmp_path):
    import shutil

    src = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "work_dirs", "data", "build", "*.egg-info", "__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                          "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("ds2d2_mm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ds2d2_mm/configs/ds2d2/retina_r101_r18_dior.py" in names
    assert "ds2d2_mm/configs/_base_/schedules/ds2d2_2x.py" in names
    assert "ds2d2_mm/cli/train.py" in names
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for name in COMMANDS:
        assert f"{name} = ds2d2_mm.cli." in entry, name
