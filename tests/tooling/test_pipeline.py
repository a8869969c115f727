"""End to end: the demo recipe shortened to a few iterations per stage writes every artifact;
tools/train.py resumes; finished stages are skipped on a second run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, SYNTHETIC_FILES, placeholder_data

QUICK = ["train_cfg.max_epochs=1", "train_dataloader.dataset.indices=8",
         "val_dataloader.dataset.indices=4", "test_dataloader.dataset.indices=4",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False",
         "test_dataloader.num_workers=0", "test_dataloader.persistent_workers=False"]
SMALL_DATA = dict(num_train=8, num_val=4, img_size=96, seed=1)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from ds2d2_mm.tooling.pipeline import PRESETS, Pipeline

    root = tmp_path_factory.mktemp("pipeline")
    pipe = Pipeline(PRESETS["demo"], work_root=root / "work", extra_options=QUICK,
                    data_root=root / "data", synthetic=SMALL_DATA)
    runs = pipe.run()
    return pipe, runs


@pytest.mark.slow
def test_pipeline_writes_every_artifact(demo_run):
    pipe, runs = demo_run
    work = pipe.work_root
    assert set(runs) == {"teacher", "amplifier", "baseline", "distilled"}
    for run in runs.values():
        assert run.checkpoint is not None and run.checkpoint.is_file()
        assert isinstance(run.metrics, dict)  # empty when a 2-iteration model detects nothing
    for name in ("retina_teacher_synthetic", "retina_hfamp_synthetic",
                 "retina_student_synthetic", "distilled_student"):
        assert (work / name / "test_metrics.json").is_file(), name
    report = (work / "report.md").read_text()
    for needle in ("Teacher", "baseline", "Distilled", "AP50", "curves.png", "spectral.png",
                   "detections.png"):
        assert needle in report, needle
    for name in ("curves.png", "spectral.png", "detections.png"):
        assert (work / "report" / name).stat().st_size > 5000, name
    exported = torch.load(work / "distilled_student.pth", weights_only=True)
    assert all(not k.startswith(("student.", "connector.", "explicit."))
               for k in exported["state_dict"])
    scalars = list((runs["distilled"].work_dir).glob("*/vis_data/scalars.json"))
    logged = set().union(*(json.loads(line) for line in scalars[0].read_text().splitlines()))
    assert {"loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_high_reg"} <= logged


@pytest.mark.slow
def test_pipeline_skips_finished_stages(demo_run, capsys):
    from ds2d2_mm.tooling.pipeline import Pipeline

    pipe, runs = demo_run
    again = Pipeline(pipe.preset, work_root=pipe.work_root, extra_options=QUICK,
                     data_root=pipe.data_root, synthetic=SMALL_DATA)
    again.run(report=False)
    out = capsys.readouterr().out
    assert out.count("done before") == 4
    assert "evaluated before" in out and "$ " not in out


def load_model(config: str, checkpoint: str, options: dict):
    """A model built from ``config`` (+ options) with ``checkpoint`` loaded, ready for
    ``inference_detector`` (which needs ``model.cfg``)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location="cpu")
    model.cfg = cfg
    return model.eval()


@pytest.mark.slow
def test_exported_student_predicts_like_the_distiller(demo_run):
    from mmdet.apis import inference_detector

    pipe, runs = demo_run
    img = sorted((pipe.data_root / "images" / "val").glob("*.png"))[0]
    options = dict(o.split("=", 1) for o in pipe.extra if "data_root" in o)
    distiller = load_model(str(REPO / runs["distilled"].config), str(runs["distilled"].checkpoint),
                           {**options, "model.student.test_cfg.score_thr": 0.0,
                            "model.teacher_ckpt": str(runs["teacher"].checkpoint),
                            "model.amplifier_ckpt": str(runs["amplifier"].checkpoint)})
    student = load_model(str(REPO / runs["baseline"].config),
                         str(pipe.work_root / "distilled_student.pth"),
                         {**options, "model.test_cfg.score_thr": 0.0})
    a = inference_detector(distiller, str(img)).pred_instances
    b = inference_detector(student, str(img)).pred_instances
    assert len(a) > 0
    assert torch.equal(a.bboxes, b.bboxes) and torch.equal(a.scores, b.scores)


@pytest.mark.slow
def test_train_tool_resumes_a_runner_checkpoint(demo_run, tmp_path):
    pipe, _ = demo_run
    cfg = "configs/demo/retina_student_synthetic.py"
    opts = [*pipe.extra, "train_cfg.val_interval=100"]
    wd = tmp_path / "wd"
    base = [sys.executable, "tools/train.py", cfg, "--work-dir", str(wd), "--cfg-options"]
    subprocess.run(base + opts, cwd=REPO, check=True, capture_output=True)
    assert (wd / "epoch_1.pth").is_file()
    out = subprocess.run([sys.executable, "tools/train.py", cfg, "--work-dir", str(wd),
                          "--resume", "--cfg-options", *opts, "train_cfg.max_epochs=2"],
                         cwd=REPO, check=True, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert "resumed epoch: 1" in log.lower() or "resumed epoch 1" in log.lower(), log[-3000:]
    assert (wd / "epoch_2.pth").is_file()


@pytest.mark.slow
def test_missing_configured_checkpoint_fails_before_training(tmp_path):
    cfg = "configs/demo/retina_distill_synthetic.py"
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    out = subprocess.run([sys.executable, "tools/train.py", cfg, "--work-dir",
                          str(tmp_path / "wd"), "--cfg-options", *data,
                          f"model.teacher_ckpt={tmp_path}/nope.pth"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode != 0
    assert "model.teacher_ckpt" in out.stderr and "nope.pth" in out.stderr
    assert not (tmp_path / "wd").exists() or not list((tmp_path / "wd").glob("*.pth"))


FAMILY_PRESETS = ["rtmdet_tiny_dior", "rtmdet_s_dior", "fcos_dior", "atss_dior",
                  "rotated_rtmdet_tiny_dota", "rotated_rtmdet_s_dota",
                  "oriented_rcnn_rotated_rtmdet_tiny_dota", "oriented_rcnn_rotated_rtmdet_s_dota"]


@pytest.mark.parametrize("name", ["retina_dior", "faster_rcnn_dior", "retina_dota",
                                  "faster_rcnn_dota", "rotated_retina_dota", *FAMILY_PRESETS])
def test_paper_presets_name_existing_configs(name):
    from ds2d2_mm.tooling.pipeline import PRESETS

    preset = PRESETS[name]
    for config in (preset.teacher, preset.amplifier, preset.baseline, preset.distill):
        assert (REPO / config).is_file(), config


@pytest.mark.parametrize("name", FAMILY_PRESETS)
def test_family_presets_are_one_recipe(name):
    """The distiller reads the preset's teacher and amplifier configs and distils its
    baseline's student; the amplifier stage starts from the preset's teacher."""
    from ds2d2_testlib import load_config

    from ds2d2_mm.tooling.pipeline import PRESETS

    preset = PRESETS[name]
    distill = load_config(REPO / preset.distill).model
    assert Path(distill.teacher_config).resolve() == (REPO / preset.teacher).resolve()
    assert Path(distill.amplifier_config).resolve() == (REPO / preset.amplifier).resolve()
    assert distill.student == load_config(REPO / preset.baseline).model
    amp = load_config(REPO / preset.amplifier).model
    assert Path(amp.teacher_config).resolve() == (REPO / preset.teacher).resolve()


def test_auto_scale_lr_reaches_every_training_command(tmp_path, monkeypatch):
    from ds2d2_mm.tooling.pipeline import PRESETS, Pipeline

    monkeypatch.delenv("PORT", raising=False)
    pipe = Pipeline(PRESETS["retina_dior"], work_root=tmp_path, gpus=4, auto_scale_lr=True)
    commands = []

    def fake_run(cmd):
        commands.append(cmd)
        wd = tmp_path / cmd[cmd.index("--work-dir") + 1]
        (wd / "epoch_24.pth").parent.mkdir(parents=True, exist_ok=True)
        (wd / "epoch_24.pth").write_bytes(b"")
        (wd / "last_checkpoint").write_text(str(wd / "epoch_24.pth"))

    monkeypatch.setattr(pipe, "run_cmd", fake_run)
    pipe.train("teacher", PRESETS["retina_dior"].teacher)
    cmd = commands[0]
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--nproc_per_node=4",
                        "--master_port=29500"]
    assert cmd[5:8] == ["-m", "ds2d2_mm.cli.train", "configs/ds2d2/retina_r101_dior.py"]
    assert "--launcher" in cmd and "--auto-scale-lr" in cmd
