"""The cross-modal demo (preset paired_demo): an RGB teacher distilled into an infrared student
on the built-in scenes' paired variant. Every config builds and loads its own modality; the
distiller trains one iteration through its own pipeline on paired files generated here, and its
exported student, in the infrared student config, predicts what the distiller predicts; the
report draws the teacher on RGB and the students on infrared; the preset runs end to end with
tiny settings (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, build, without_pretrained

from ds2d2_mm.tooling.pipeline import PRESETS, Pipeline
from ds2d2_mm.tooling.runs import RunResult
from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset

PAIRED = PRESETS["paired_demo"]
ENV = PAIRED.data_env
TINY = dict(num_train=3, num_val=2, num_test=0, img_size=64, seed=3)
CONFIGS = [PAIRED.teacher, PAIRED.amplifier, PAIRED.baseline, PAIRED.distill]
#: Per config: the folders its train and val datasets read, and the channels of one sample.
READS = {
    PAIRED.teacher: ({"img": "train/rgb/"}, {"img": "val/rgb/"}, 3),
    PAIRED.amplifier: ({"img": "train/rgb/"}, {"img": "val/rgb/"}, 3),
    PAIRED.baseline: ({"img": "train/ir/"}, {"img": "val/ir/"}, 1),
    PAIRED.distill: ({"rgb": "train/rgb/", "ir": "train/ir/"},
                     {"rgb": "val/rgb/", "ir": "val/ir/"}, 4),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("paired") / "data", **TINY,
                                    variant="paired")


def _config(name: str | Path, data: Path, monkeypatch):
    """The config read with the data folder in ``ENV`` (read afresh: the folder is substituted
    when the file is parsed)."""
    from mmengine.config import Config

    monkeypatch.setenv(ENV, str(data))
    return Config.fromfile(str(REPO / name))


def _model_cfg(cfg, score_thr: float | None = None) -> dict:
    """The config's model, offline, with random teacher / amplifier where it has them."""
    model = without_pretrained(cfg.model.to_dict())
    if model["type"] == "SpectralDistiller":
        model.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
        if score_thr is not None:
            model["student"]["test_cfg"]["score_thr"] = score_thr
    elif model["type"] == "HighFrequencyAmplifier":
        model["teacher_ckpt"] = None
    elif score_thr is not None:
        model["test_cfg"]["score_thr"] = score_thr
    return model


def _batch(dataset, indices=(0, 1)) -> dict:
    from mmengine.dataset import pseudo_collate

    return pseudo_collate([dataset[i] for i in indices])


def _first_conv_in(model: torch.nn.Module) -> int:
    from ds2d2_mm.models.distillers.input_router import first_conv_channels

    detector = getattr(model, "student", None) or getattr(model, "detector", None) or model
    return first_conv_channels(detector)


# --------------------------------------------------------------------------------------------
# The configs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
def test_paired_config_builds_and_reads_its_modality(config, data, monkeypatch):
    from mmdet.registry import DATASETS

    cfg = _config(config, data, monkeypatch)
    train_prefix, val_prefix, channels = READS[config]
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        assert cfg[loader].dataset.data_root == f"{data}/"
    assert cfg.val_evaluator.ann_file == f"{data}/annotations/val.json"
    assert cfg.train_dataloader.dataset.data_prefix == train_prefix
    assert cfg.val_dataloader.dataset.data_prefix == val_prefix
    assert cfg.test_dataloader.dataset.data_prefix == val_prefix  # the demo tests on val
    model = build(_model_cfg(cfg))
    assert _first_conv_in(model) == (1 if channels == 4 else channels)  # the student: ir
    for loader in ("train_dataloader", "val_dataloader"):
        dataset = DATASETS.build(cfg[loader].dataset)
        sample = dataset[0]
        assert sample["inputs"].shape[0] == channels, loader
        folder = next(iter(cfg[loader].dataset.data_prefix.values()))
        assert f"/{folder}" in sample["data_samples"].img_path
        assert dataset.metainfo["classes"] == ("airplane", "ship", "storagetank", "vehicle")
        assert len(sample["data_samples"].gt_instances) > 0


def test_the_infrared_student_is_a_stock_one_band_retinanet(data, monkeypatch):
    cfg = _config(PAIRED.baseline, data, monkeypatch)
    for loader in ("train_dataloader", "val_dataloader"):
        load = cfg[loader].dataset.pipeline[0]
        assert (load.type, load.color_type) == ("LoadImageFromFile", "grayscale")
    pre = cfg.model.data_preprocessor
    assert pre.type == "DetDataPreprocessor" and not pre.bgr_to_rgb
    assert len(pre.mean) == len(pre.std) == 1
    assert cfg.model.type == "RetinaNet" and cfg.model.backbone.in_channels == 1


def test_the_distiller_pairs_rgb_teacher_and_infrared_student(data, monkeypatch):
    from ds2d2_mm.apis.runner import check_distill_config

    cfg = _config(PAIRED.distill, data, monkeypatch)
    student = _config(PAIRED.baseline, data, monkeypatch)
    teacher = _config(PAIRED.teacher, data, monkeypatch)
    check_distill_config(cfg)  # every dataloader has the rgb and ir folders
    dc = cfg.model.distill_cfg
    assert (dc.teacher_input, dc.student_input) == ("rgb", "ir")
    assert cfg.train_dataloader.dataset.type == "SyntheticPairedDataset"
    assert cfg.train_dataloader.dataset.pipeline[0].modalities == dict(rgb=3, ir=1)
    modalities = cfg.model.data_preprocessor.modalities
    # the teacher's normalisation for rgb (the RGB demo's), the student's own for ir
    t_pre, s_pre = teacher.model.data_preprocessor, student.model.data_preprocessor
    assert (modalities.rgb.mean, modalities.rgb.std) == (t_pre.mean, t_pre.std)
    assert modalities.rgb.bgr_to_rgb and t_pre.bgr_to_rgb
    assert (modalities.ir.mean, modalities.ir.std) == (s_pre.mean, s_pre.std)
    assert cfg.model.student == student.model.to_dict()  # the baseline itself is distilled
    model = build(_model_cfg(cfg))
    split = model.router
    assert (split.teacher, split.student, split.renorm) == ((0, 3), (3, 4), None)
    # same schedule for the baseline and the distilled student (the demo's)
    for key in ("train_cfg", "optim_wrapper", "param_scheduler"):
        assert cfg[key] == student[key], key
    assert cfg.train_dataloader.batch_size == student.train_dataloader.batch_size


def test_the_preset_names_existing_configs_and_their_data(monkeypatch):
    from mmengine.config import Config

    assert (PAIRED.variant, ENV) == ("paired", "DS2D2_PAIRED_ROOT")
    for config in CONFIGS:
        assert (REPO / config).is_file(), config
    monkeypatch.delenv(ENV, raising=False)
    teacher = Config.fromfile(str(REPO / PAIRED.teacher))
    assert teacher.train_dataloader.dataset.data_root == f"{PAIRED.synthetic_data}/"
    # the later stages' default checkpoints are the earlier stages' work dirs in the preset
    epochs = teacher.train_cfg.max_epochs
    teacher_ckpt = f"{PAIRED.work_root}/{Path(PAIRED.teacher).stem}/epoch_{epochs}.pth"
    amp_ckpt = f"{PAIRED.work_root}/{Path(PAIRED.amplifier).stem}/epoch_{epochs}.pth"
    amplifier = Config.fromfile(str(REPO / PAIRED.amplifier))
    assert amplifier.model.teacher_ckpt == teacher_ckpt
    distill = Config.fromfile(str(REPO / PAIRED.distill))
    assert (distill.model.teacher_ckpt, distill.model.amplifier_ckpt) == (teacher_ckpt, amp_ckpt)
    assert Path(distill.model.teacher_config).resolve() == (REPO / PAIRED.teacher).resolve()
    assert Path(distill.model.amplifier_config).resolve() == (REPO / PAIRED.amplifier).resolve()


# --------------------------------------------------------------------------------------------
# One iteration, export, prediction on infrared alone
# --------------------------------------------------------------------------------------------


def test_distill_iteration_then_the_exported_student_predicts_on_infrared_alone(
        data, monkeypatch, tmp_path):
    from mmdet.registry import DATASETS
    from mmengine.runner import load_checkpoint

    from ds2d2_mm.apis.export_student import export_student

    cfg = _config(PAIRED.distill, data, monkeypatch)
    torch.manual_seed(0)
    model = build(_model_cfg(cfg, score_thr=0.0))
    model.train()
    train = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(_batch(train), True)
    assert batch["inputs"].shape[:2] == (2, 4)
    # the infrared channel normalised by the student's statistics (measured on other images)
    assert abs(float(batch["inputs"][:, 3].mean())) < 1.0
    losses = model.loss(batch["inputs"], batch["data_samples"])
    assert any(k.startswith("loss_exp") for k in losses)
    assert any(k.startswith("loss_imp") for k in losses)
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    weight = model.student.backbone.conv1.weight
    before = weight.detach().clone()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    optim.zero_grad()
    total.backward()
    optim.step()
    assert not torch.equal(before, weight)  # the infrared stem learns

    # the distiller validates on pairs, predicting from the infrared channel
    model.eval()
    val = DATASETS.build(cfg.val_dataloader.dataset)
    with torch.no_grad():
        ours = model.test_step(_batch(val))

    ckpt, exported = tmp_path / "distiller.pth", tmp_path / "student_ir.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, ckpt)
    export_student(str(ckpt), str(exported))
    ir_cfg = _config(PAIRED.baseline, data, monkeypatch)
    student = build(_model_cfg(ir_cfg, score_thr=0.0))
    load_checkpoint(student, str(exported), map_location="cpu", strict=True)
    student.eval()
    ir_val = DATASETS.build(ir_cfg.val_dataloader.dataset)
    ir_batch = _batch(ir_val)
    assert ir_batch["inputs"][0].shape[0] == 1
    with torch.no_grad():
        theirs = student.test_step(ir_batch)
    for a, b in zip(ours, theirs, strict=True):
        assert len(a.pred_instances) > 0
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)


# --------------------------------------------------------------------------------------------
# The report: teacher on RGB, students on infrared
# --------------------------------------------------------------------------------------------


def test_report_draws_the_teacher_on_rgb_and_the_students_on_infrared(data, monkeypatch,
                                                                       tmp_path):
    from ds2d2_mm.tooling import report

    monkeypatch.setenv(ENV, str(data))
    seen: dict[str, tuple] = {}

    def spectral(config, checkpoint, sample, out, device="cpu"):
        seen["spectral"] = (config, sample.path)
        raise RuntimeError("not drawn here")

    def detections(config, checkpoints, samples, out, score_thr=0.3, device="cpu"):
        seen["detections"] = (config, [s.path for s in samples])
        raise RuntimeError("not drawn here")

    monkeypatch.setattr(report, "plot_spectral", spectral)
    monkeypatch.setattr(report, "plot_detections", detections)
    ckpt = tmp_path / "x.pth"
    runs = {name: RunResult(name, config, tmp_path / name, ckpt)
            for name, config in (("teacher", PAIRED.teacher), ("amplifier", PAIRED.amplifier),
                                 ("baseline", PAIRED.baseline), ("distilled", PAIRED.distill))}
    report.write_report(tmp_path / "work", runs, elapsed_s=1.0, student_export=ckpt,
                        data_root=data, num_images=2)
    config, path = seen["spectral"]
    assert config == PAIRED.teacher and path.parent == data / "val" / "rgb"
    config, paths = seen["detections"]
    assert config == PAIRED.baseline and {p.parent for p in paths} == {data / "val" / "ir"}


# --------------------------------------------------------------------------------------------
# The preset end to end
# --------------------------------------------------------------------------------------------

QUICK = ["train_cfg.max_epochs=1", "train_dataloader.dataset.indices=8",
         "val_dataloader.dataset.indices=4", "test_dataloader.dataset.indices=4",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False",
         "test_dataloader.num_workers=0", "test_dataloader.persistent_workers=False"]


@pytest.mark.slow
def test_paired_preset_end_to_end(tmp_path, monkeypatch):
    import os

    from test_report import assert_png

    monkeypatch.delenv(ENV, raising=False)
    pipe = Pipeline(PAIRED, work_root=tmp_path / "work", extra_options=QUICK,
                    data_root=tmp_path / "data",
                    synthetic=dict(num_train=8, num_val=4, img_size=96, seed=1))
    runs = pipe.run()
    assert ENV not in os.environ  # set for the run only
    data = tmp_path / "data"
    assert json.loads((data / ".complete.json").read_text())["params"]["variant"] == "paired"
    for run in runs.values():
        assert run.checkpoint is not None and run.checkpoint.is_file()
        assert isinstance(run.metrics, dict)  # empty when 1 epoch on 8 images finds nothing
    # the distilled student was evaluated as exported, in the infrared student config
    assert (tmp_path / "work" / "distilled_student" / "test_metrics.json").is_file()
    exported = torch.load(tmp_path / "work" / "distilled_student.pth", weights_only=True)
    assert exported["state_dict"]["backbone.conv1.weight"].shape[1] == 1
    report_md = (tmp_path / "work" / "report.md").read_text()
    assert "could not be drawn" not in report_md
    for name in ("curves.png", "spectral.png", "detections.png"):
        assert_png(tmp_path / "work" / "report" / name)
