"""First contact: before the runner starts, a missing dataset file or stage checkpoint is one
paragraph naming the file, the dataset, its official release and the command that makes it.

In-process: the message for each dataset family of the shipped configs, its command taken by the
command's own parser and written as the docs write it. Subprocesses: the real tools
(tools/train.py, tools/test.py, tools/pipeline.py) in an empty folder, one per family, plus the
missing teacher and amplifier of a distiller: exit code 1, no traceback, nothing of mmengine's
runner printed, the file and the command in the one error paragraph.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from ds2d2_testlib import REPO, load_config

from ds2d2_mm.apis.preflight import (
    FAMILIES,
    SYNTHETIC_VARIANTS,
    check_checkpoints,
    check_datasets,
    family_of,
    missing_dataset_files,
)
from ds2d2_mm.utils.errors import MissingInputError, known_errors

CONFIGS = REPO / "configs"
RECIPES = (REPO / "docs" / "recipes.md").read_text()

#: (config, what its first missing file is, the dataset family, the command it prints, words of
#: the release) per family, for a training run in an empty folder.
FAMILY_CASES = {
    "DIOR": ("ds2d2/retina_r101_dior.py", "data/DIOR/annotations/trainval.json", "DIOR",
             "python tools/data/dior_to_coco.py --root data/DIOR --out data/DIOR/annotations",
             "DIOR dataset's release"),
    "DOTA": ("ds2d2/rotated_retina_r101_dota.py", "data/DOTA/split_1024/trainval/annfiles/",
             "DOTA v1.0",
             "python tools/data/split_dota.py --src data/DOTA/train "
             "--out data/DOTA/split_1024/trainval", "DOTA project's release"),
    "DOTA-hbb": ("ds2d2/retina_r101_dota.py", "data/DOTA/split_1024/trainval/hbb.json",
                 "DOTA v1.0",
                 "python tools/data/split_dota.py --src data/DOTA/train "
                 "--out data/DOTA/split_1024/trainval "
                 "--coco-json data/DOTA/split_1024/trainval/hbb.json", "DOTA project's release"),
    "DroneVehicle": ("multimodal/retina_r101_dronevehicle_rgb.py",
                     "data/DroneVehicle640/annotations/train.json", "DroneVehicle",
                     "python tools/data/dronevehicle_to_coco.py --root data/DroneVehicle "
                     "--out data/DroneVehicle640 --crop-border 100",
                     "DroneVehicle project's release"),
    "SSDD": ("sar/oriented_rcnn_r101_ssdd.py", "data/ssdd/train/train.json", "SSDD",
             None, "Official-SSDD release"),
    "HRSID": ("sar/oriented_rcnn_r101_hrsid.py", "data/HRSID_JPG/annotations/train2017.json",
              "HRSID", None, "HRSID project's release"),
    "demo": ("demo/retina_teacher_synthetic.py", "data/synthetic_aerial/annotations/train.json",
             "the built-in synthetic scenes",
             "python tools/data/make_synthetic.py --out data/synthetic_aerial", None),
}

needs_mmrotate = {"DOTA", "SSDD", "HRSID"}


def family_params():
    return [pytest.param(name, marks=[pytest.mark.skipif(
        name in needs_mmrotate and not _has("mmrotate"), reason="needs mmrotate")])
        for name in FAMILY_CASES]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _message(cfg, stage: str = "train") -> str:
    with pytest.raises(MissingInputError) as err:
        check_datasets(cfg, stage, "the.py")
    return str(err.value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", family_params())
def test_each_dataset_family_names_file_release_and_command(name, tmp_path, monkeypatch):
    config, path, family, command, release = FAMILY_CASES[name]
    cfg = load_config(CONFIGS / config)
    monkeypatch.chdir(tmp_path)  # an empty folder: nothing of the dataset exists
    text = _message(cfg)
    assert "\n" not in text  # one paragraph
    assert text.startswith(f"the.py: train_dataloader.dataset.ann_file = {path!r} does not "
                           "exist")
    assert f"of {family}" in text
    if release is not None:
        assert f"The official release: the {release}" in text
    if command is None:  # the SAR releases are read as they are
        assert "No conversion: the config reads the release's files as they are." in text
    else:
        assert f"with: {command}" in text
    for word in ("pypi", "pip install", "http"):
        assert word not in text.lower()


@pytest.mark.parametrize("tool", ["dior_to_coco", "split_dota", "dronevehicle_to_coco",
                                  "make_synthetic"])
def test_the_printed_commands_are_what_the_commands_accept(tool):
    """Each converter command the messages print parses with that command's own parser."""
    import importlib

    module = importlib.import_module(f"ds2d2_mm.cli.{tool}")
    commands = [c for *_, c, _ in FAMILY_CASES.values()
                if c is not None and c.startswith(f"python tools/data/{tool}.py")]
    assert commands
    for command in commands:
        argv = shlex.split(command)[2:]
        module.parse_args(argv)  # SystemExit on an unknown option
        assert (REPO / shlex.split(command)[1]).is_file()


@pytest.mark.parametrize("name", ["DIOR", "DOTA", "DroneVehicle"])
def test_the_printed_converter_commands_are_those_of_the_docs(name):
    command = FAMILY_CASES[name][3]
    assert command in _one_line(RECIPES).replace("`", ""), command


def test_the_dota_source_labels_of_the_whole_image_metric_are_the_release_itself(
        tmp_path, monkeypatch):
    pytest.importorskip("mmrotate")
    cfg = load_config(CONFIGS / "ds2d2" / "rotated_retina_r101_dota.py")
    monkeypatch.chdir(tmp_path)
    for folder in ("trainval/annfiles", "trainval/images", "val/annfiles", "val/images"):
        (tmp_path / "data/DOTA/split_1024" / folder).mkdir(parents=True)
    assert missing_dataset_files(cfg, "train") == []  # the val loop scores patches
    text = _message(cfg, "test")
    assert text.startswith("the.py: test_evaluator.ann_dir = 'data/DOTA/val/labelTxt/' does not "
                           "exist")
    assert "source label folder of DOTA v1.0" in text
    assert "No conversion: the config reads the release's files as they are." in text
    # the test split's submission alone reads no labels
    cfg.test_evaluator.update(format_only=True, outfile_prefix=str(tmp_path / "sub"))
    assert missing_dataset_files(cfg, "test") == []


def test_val_and_test_splits_get_their_own_commands(tmp_path, monkeypatch):
    cfg = load_config(CONFIGS / "ds2d2" / "retina_r101_dota.py")
    monkeypatch.chdir(tmp_path)
    text = _message(cfg, "pipeline")
    assert ("python tools/data/split_dota.py --src data/DOTA/val --out data/DOTA/split_1024/val "
            "--coco-json data/DOTA/split_1024/val/hbb.json") in text
    assert "Also missing: " in text


def test_what_each_stage_reads(tmp_path, monkeypatch):
    """Training reads train + val (with a val loop), testing the test split alone."""
    cfg = load_config(CONFIGS / "multimodal" / "retina_r101_dronevehicle_rgb.py")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data" / "DroneVehicle640"
    for split in ("train", "val"):
        (root / split / "rgb").mkdir(parents=True)
        (root / "annotations" / f"{split}.json").parent.mkdir(exist_ok=True)
        (root / "annotations" / f"{split}.json").touch()
    assert missing_dataset_files(cfg, "train") == []
    missing = missing_dataset_files(cfg, "test")
    # (the test evaluator reads the loader's json: named once)
    assert [m.key for m in missing] == ["test_dataloader.dataset.ann_file",
                                        "test_dataloader.dataset.data_prefix.img"]
    cfg.val_cfg = None  # no val loop: the val files are not read
    (root / "annotations" / "val.json").unlink()
    assert missing_dataset_files(cfg, "train") == []
    with pytest.raises(ValueError, match="stage must be one of"):
        missing_dataset_files(cfg, "serve")


def test_wrapped_datasets_remote_files_and_absolute_paths(tmp_path):
    inner = dict(type="DIORDataset", data_root=str(tmp_path / "DIOR"),
                 ann_file="annotations/trainval.json", data_prefix=dict(img=""))
    cfg = dict(train_dataloader=dict(dataset=dict(
        type="ConcatDataset", datasets=[
            dict(type="RepeatDataset", times=2, dataset=inner),
            dict(inner, data_root="s3://bucket/DIOR/"),  # left to the storage backend
            dict(inner, backend_args=dict(backend="petrel")),
        ])))
    missing = missing_dataset_files(cfg)
    assert [(m.key, m.path) for m in missing] == [
        ("train_dataloader.dataset.datasets[0].dataset.ann_file",
         f"{tmp_path}/DIOR/annotations/trainval.json"),
        ("train_dataloader.dataset.datasets[0].dataset.data_prefix.img", f"{tmp_path}/DIOR")]
    (tmp_path / "DIOR" / "annotations").mkdir(parents=True)
    (tmp_path / "DIOR" / "annotations" / "trainval.json").touch()
    assert missing_dataset_files(cfg) == []
    absolute = dict(train_dataloader=dict(dataset=dict(
        inner, ann_file=str(tmp_path / "elsewhere.json"))))
    assert [m.path for m in missing_dataset_files(absolute)] == [str(tmp_path / "elsewhere.json")]


def test_unknown_datasets_get_the_generic_advice(tmp_path, monkeypatch):
    cfg = load_config(CONFIGS / "multiband" / "retina_r101_coco_multiband.py")
    monkeypatch.chdir(tmp_path)
    text = _message(cfg)
    assert "'data/multiband/annotations/train.json' does not exist" in text
    assert "none of the datasets this project prepares" in text
    assert "docs/recipes.md#data-preparation" in text
    assert family_of("CocoDataset", "data/multiband/") is None


def test_families_are_told_by_type_then_by_folder():
    names = {f.name: f for f in FAMILIES}
    assert family_of("DIORDataset") is names["DIOR"]
    assert family_of("mmrotate.DOTADataset") is names["DOTA v1.0"]
    assert family_of("DOTAHBBDataset") is names["DOTA v1.0"]
    assert family_of("mmdet.CocoDataset", "data/ssdd/") is names["SSDD"]
    assert family_of("CocoDataset", "data/HRSID_JPG/") is names["HRSID"]
    assert family_of("PairedCocoDataset", "data/synthetic_paired/") is names[
        "the built-in synthetic scenes"]
    assert family_of("DroneVehicleDataset", "data/synthetic_aerial/") is names["DroneVehicle"]


def test_synthetic_variants_name_their_generator_and_preset(tmp_path, monkeypatch):
    from ds2d2_mm.tooling.synthetic import VARIANTS

    assert set(SYNTHETIC_VARIANTS) == set(VARIANTS) - {"rgb"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DS2D2_RGBN_ROOT", raising=False)
    text = _message(load_config(CONFIGS / "demo" / "retina_teacher_rgbn.py"))
    assert ("python tools/data/make_synthetic.py --out data/synthetic_rgbn --variant rgbn "
            "(tools/pipeline.py --preset rgbn_demo makes it on first use)") in text


# -- teacher and amplifier checkpoints ----------------------------------------------------------

DISTILLER = CONFIGS / "ds2d2" / "retina_r101_r18_dior.py"


def test_a_missing_teacher_names_its_config_and_command(tmp_path, monkeypatch):
    cfg = load_config(DISTILLER)
    monkeypatch.chdir(REPO)
    with pytest.raises(MissingInputError) as err:
        check_checkpoints(cfg, "configs/ds2d2/retina_r101_r18_dior.py")
    text = str(err.value)
    assert text.startswith("configs/ds2d2/retina_r101_r18_dior.py: model.teacher_ckpt = "
                           "'work_dirs/retina_r101_dior/epoch_24.pth' does not exist")
    assert "`python tools/train.py configs/ds2d2/retina_r101_dior.py`" in text
    assert "`python tools/train.py configs/ds2d2/retina_r101_hfamp_dior.py`" in text
    assert "Train the teacher first" in text
    teacher = tmp_path / "teacher.pth"
    teacher.write_bytes(b"")  # the check is about existence; loading comes later
    cfg.model.teacher_ckpt = str(teacher)
    with pytest.raises(MissingInputError) as err:
        check_checkpoints(cfg)
    text = str(err.value)
    assert "teacher_ckpt" not in text and text.startswith(
        "model.amplifier_ckpt = 'work_dirs/retina_r101_hfamp_dior/epoch_24.pth'")
    assert ("the high-frequency amplifier stage, config configs/ds2d2/retina_r101_hfamp_dior.py"
            in text)
    cfg.model.amplifier_ckpt = "https://example.invalid/amp.pth"  # remote: fetched later
    check_checkpoints(cfg)


def test_a_checkpoint_elsewhere_says_where_the_stage_writes(tmp_path, monkeypatch):
    cfg = load_config(CONFIGS / "ds2d2" / "retina_r101_hfamp_dior.py")
    monkeypatch.chdir(REPO)
    cfg.model.teacher_ckpt = str(tmp_path / "mine.pth")
    with pytest.raises(MissingInputError, match=r"its checkpoints land in "
                       r"work_dirs/retina_r101_dior/: point model\.teacher_ckpt at the last one"):
        check_checkpoints(cfg)
    cfg.model.teacher_config = dict(model=dict(type="RetinaNet"))
    with pytest.raises(MissingInputError, match=r"train the config given inline in "
                       r"model\.teacher_config with python tools/train.py"):
        check_checkpoints(cfg)


def test_missing_inputs_are_a_known_error():
    assert issubclass(MissingInputError, known_errors())
    assert issubclass(MissingInputError, FileNotFoundError)


# -- the real tools ------------------------------------------------------------------------------

def _placeholders(root: Path, *files: str) -> None:
    for name in files:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()


DIOR_DATA = ("data/DIOR/annotations/trainval.json", "data/DIOR/annotations/test.json")

#: name -> (argv after the interpreter, files made first, expected file, expected command)
TOOL_CASES = {
    family: ([f"tools/{'test' if family == 'HRSID' else 'train'}.py", str(CONFIGS / config),
              *(["ckpt.pth"] if family == "HRSID" else [])], (), path, command)
    for family, (config, path, _, command, _) in FAMILY_CASES.items() if family != "DOTA-hbb"
}
TOOL_CASES["HRSID"] = (TOOL_CASES["HRSID"][0], ("ckpt.pth",),
                       "data/HRSID_JPG/annotations/test2017.json", None)  # the test split
TOOL_CASES["pipeline"] = (["tools/pipeline.py", "--preset", "retina_dior", "--work-root", "work"],
                          (), "data/DIOR/annotations/trainval.json",
                          FAMILY_CASES["DIOR"][3])
TOOL_CASES["teacher"] = (["tools/train.py", str(DISTILLER)], DIOR_DATA,
                         "work_dirs/retina_r101_dior/epoch_24.pth",
                         f"python tools/train.py {CONFIGS}/ds2d2/retina_r101_dior.py")
TOOL_CASES["amplifier"] = (["tools/train.py", str(DISTILLER)],
                           (*DIOR_DATA, "work_dirs/retina_r101_dior/epoch_24.pth"),
                           "work_dirs/retina_r101_hfamp_dior/epoch_24.pth",
                           f"python tools/train.py {CONFIGS}/ds2d2/retina_r101_hfamp_dior.py")


@pytest.fixture(scope="module")
def tool_runs(tmp_path_factory):
    """Every case's tool, two at a time (each start imports torch, mmdet and mmrotate), each in
    its own empty folder."""
    runs, pending = {}, list(TOOL_CASES)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("DS2D2_RGBN_ROOT", None)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = {}
        for name in batch:
            argv, files, _, _ = TOOL_CASES[name]
            cwd = tmp_path_factory.mktemp(name)
            _placeholders(cwd, *files)
            argv = [str(REPO / argv[0]), *argv[1:]]
            procs[name] = (cwd, subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env,
                                                 text=True, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE))
        for name, (cwd, proc) in procs.items():
            out, err = proc.communicate(timeout=300)
            runs[name] = (cwd, proc.returncode, out, err)
    return runs


def tool_params():
    return [pytest.param(name, marks=[pytest.mark.skipif(
        name in needs_mmrotate and not _has("mmrotate"), reason="needs mmrotate")])
        for name in TOOL_CASES]


@pytest.mark.slow  # nine tool starts (torch, mmdet, mmrotate), two at a time: about a minute
@pytest.mark.parametrize("name", tool_params())
def test_the_tool_says_it_in_one_paragraph_before_the_runner_starts(name, tool_runs):
    cwd, code, out, err = tool_runs[name]
    _, _, path, command = TOOL_CASES[name]
    both = out + err
    assert code == 1, both[-3000:]
    assert "Traceback" not in both, both[-3000:]
    assert "System environment" not in both and "mmengine - INFO" not in both  # no runner
    assert "--debug for the traceback" not in both
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err[-3000:]
    text = errors[0]
    assert f"{path!r} does not exist" in text, text
    assert f"working directory {cwd}" in text
    if command is not None:
        assert command in text, text
    if name == "pipeline":
        assert not (cwd / "work").exists() or not any((cwd / "work").rglob("*.pth"))
        assert "teacher: training" not in out  # no stage started
    assert not (cwd / "work_dirs").exists() or not any((cwd / "work_dirs").rglob("*.log"))


@pytest.mark.slow
def test_the_tools_go_on_when_the_files_are_there(tmp_path):
    """With the demo's data made by its generator command, the test tool gets past the check
    (to the checkpoint it is given, which is not there)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    made = subprocess.run([sys.executable, str(REPO / "tools/data/make_synthetic.py"), "--out",
                           "data/synthetic_aerial", "--num-train", "2", "--num-val", "1",
                           "--img-size", "64"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    out = subprocess.run([sys.executable, str(REPO / "tools/test.py"),
                          str(CONFIGS / "demo" / "retina_student_synthetic.py"), "nope.pth"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert re.search(r"error: checkpoint not found: nope\.pth", out.stderr), out.stderr[-2000:]


def test_mmrotates_own_dota_layout_gets_the_splitter_for_its_folder(tmp_path, monkeypatch):
    mmrotate = pytest.importorskip("mmrotate")
    config = (Path(mmrotate.__file__).parent / ".mim" / "configs" / "rotated_retinanet"
              / "rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py")
    cfg = load_config(config)
    monkeypatch.chdir(tmp_path)
    text = _message(cfg)
    assert "'data/split_ss_dota/trainval/annfiles/' does not exist" in text
    assert ("with: python tools/data/split_dota.py --src data/DOTA/train "
            "--out data/split_ss_dota/trainval.") in text
