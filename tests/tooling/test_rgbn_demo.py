"""The demo on other bands: the rgbn demo configs (4-band TIFFs, band statistics) train one
iteration; the report draws on 1- and 4-band inputs (mmdet's DetInferencer on a LoadMultiBandImage
pipeline); the rgbn_demo preset runs end to end with tiny settings (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ds2d2_testlib import REPO, without_pretrained
from test_report import assert_png

from ds2d2_mm.tooling.multiband_view import display_rgb, read_display_image
from ds2d2_mm.tooling.pipeline import PRESETS, Pipeline
from ds2d2_mm.tooling.report import load_val_samples, plot_detections, plot_spectral
from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset

RGBN = PRESETS["rgbn_demo"]
ENV = RGBN.data_env
TINY = dict(num_train=3, num_val=3, num_test=0, img_size=64, seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("variants")
    return {variant: ensure_synthetic_dataset(root / variant, **TINY, variant=variant)
            for variant in ("rgbn", "sar")}


def _random_checkpoint(model_cfg: dict, path: Path, seed: int) -> Path:
    from mmdet.registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


# --------------------------------------------------------------------------------------------
# Display of any band count
# --------------------------------------------------------------------------------------------


def test_display_rule_one_band_grey_three_or_more_first_three_stretched():
    rng = np.random.default_rng(0)
    sar = rng.gamma(1.0, 0.05, (20, 30)).astype(np.float32)
    shown = display_rgb(sar)
    assert shown.shape == (20, 30, 3) and shown.dtype == np.uint8
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()
    assert shown.min() == 0 and shown.max() == 255  # stretched to its percentiles
    assert np.corrcoef(shown[..., 0].ravel(), sar.ravel())[0, 1] > 0.8
    rgbn = rng.integers(0, 4096, (20, 30, 4)).astype(np.uint16)
    rgbn[..., 3] = 0  # the fourth band is not shown
    shown = display_rgb(rgbn)
    for c in range(3):
        assert np.corrcoef(shown[..., c].ravel(), rgbn[..., c].ravel())[0, 1] > 0.95
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert (display_rgb(rgb) == rgb).all()
    with pytest.raises(ValueError, match="cannot display"):
        display_rgb(np.zeros((2, 2, 0)))


def test_read_display_image_reads_rasters_and_names_missing_files(data, tmp_path):
    for variant in ("rgbn", "sar"):
        img = read_display_image(data[variant] / "images/val/00000.tif")
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 5
    with pytest.raises(FileNotFoundError, match="nothing.tif"):
        read_display_image(tmp_path / "nothing.tif")


# --------------------------------------------------------------------------------------------
# Configs and report figures on 4 and 1 bands
# --------------------------------------------------------------------------------------------

RGBN_CONFIGS = [RGBN.teacher, RGBN.amplifier, RGBN.baseline, RGBN.distill]


@pytest.mark.parametrize("config", RGBN_CONFIGS)
def test_rgbn_demo_config_trains_one_iteration_on_the_variant(config, data, monkeypatch):
    from ds2d2_testlib import build
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    monkeypatch.setenv(ENV, str(data["rgbn"]))
    cfg = Config.fromfile(str(REPO / config))  # read now: the data folder comes from ENV
    assert cfg.train_dataloader.dataset.data_root == f"{data['rgbn']}/"
    model_cfg = without_pretrained(cfg.model.to_dict())
    if model_cfg["type"] == "SpectralDistiller":
        model_cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model_cfg["type"] == "HighFrequencyAmplifier":
        model_cfg["teacher_ckpt"] = None
    model = build(model_cfg).train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    assert batch["inputs"].shape[:2] == (2, 4)
    assert abs(float(batch["inputs"].mean())) < 1.5  # normalised by the band statistics
    losses = model.loss(batch["inputs"], batch["data_samples"])
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()


def _one_band_config(tmp_path: Path, data_root: Path) -> Path:
    """The rgbn demo student read as a 1-band SAR model on the sar variant."""
    path = tmp_path / "retina_student_sar.py"
    path.write_text(f"""
_base_ = ['{REPO / RGBN.baseline}']
test_pipeline = [
    dict(type='LoadMultiBandImage', expected_bands=1),
    dict(type='Resize', scale=(192, 192), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor')),
]
val_dataloader = dict(dataset=dict(data_root='{data_root}/', pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(backbone=dict(in_channels=1),
             data_preprocessor=dict(stats_file='{data_root}/band_stats.json'))
""")
    return path


def test_report_figures_on_four_and_one_band_inputs(data, tmp_path, monkeypatch):
    from mmengine.config import Config

    monkeypatch.setenv(ENV, str(data["rgbn"]))
    one_band = _one_band_config(tmp_path, data["sar"])
    for config, root, bands in ((REPO / RGBN.baseline, data["rgbn"], 4),
                                (one_band, data["sar"], 1)):
        cfg = Config.fromfile(str(config))
        assert cfg.test_dataloader.dataset.pipeline[0].expected_bands == bands
        ckpt = _random_checkpoint(cfg.model, tmp_path / f"b{bands}" / "epoch_1.pth", bands)
        samples = load_val_samples(config, root, limit=2)
        assert all(s.path.suffix == ".tif" for s in samples)
        out = plot_detections(config, {"baseline": ckpt, "again": ckpt}, samples,
                              tmp_path / f"det{bands}.png", score_thr=0.0)
        assert_png(out)
        assert_png(plot_spectral(config, ckpt, samples[0], tmp_path / f"spec{bands}.png"))


# --------------------------------------------------------------------------------------------
# The preset end to end
# --------------------------------------------------------------------------------------------

QUICK = ["train_cfg.max_epochs=1", "train_dataloader.dataset.indices=8",
         "val_dataloader.dataset.indices=4", "test_dataloader.dataset.indices=4",
         "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
         "val_dataloader.num_workers=0", "val_dataloader.persistent_workers=False",
         "test_dataloader.num_workers=0", "test_dataloader.persistent_workers=False"]


def test_pipeline_passes_the_data_folder_to_the_configs_for_the_run_only(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv(ENV, "before")
    pipe = Pipeline(RGBN, work_root=tmp_path / "work", data_root=tmp_path / "data")
    assert pipe.env == {ENV: str((tmp_path / "data").resolve())}
    seen = {}

    def fake_run(report: bool) -> dict:
        seen["env"] = os.environ[ENV]
        raise RuntimeError("stop")

    monkeypatch.setattr(pipe, "_run", fake_run)
    with pytest.raises(RuntimeError, match="stop"):
        pipe.run()
    assert seen["env"] == str((tmp_path / "data").resolve())
    assert os.environ[ENV] == "before"  # restored, even after a failure
    assert Pipeline(PRESETS["demo"], work_root=tmp_path).env == {}


@pytest.mark.slow
def test_rgbn_preset_end_to_end(tmp_path, monkeypatch):
    import os

    monkeypatch.delenv(ENV, raising=False)
    pipe = Pipeline(RGBN, work_root=tmp_path / "work", extra_options=QUICK,
                    data_root=tmp_path / "data",
                    synthetic=dict(num_train=8, num_val=4, img_size=96, seed=1))
    runs = pipe.run()
    assert ENV not in os.environ  # set for the run only
    data = tmp_path / "data"
    marker = json.loads((data / ".complete.json").read_text())
    assert marker["params"]["variant"] == "rgbn"
    assert json.loads((data / "band_stats.json").read_text())["bands"] == 4
    for run in runs.values():
        assert run.checkpoint is not None and run.checkpoint.is_file()
        assert isinstance(run.metrics, dict)
    # every stage read the data generated here (the configs' ENV data folder)
    dumped = (runs["teacher"].work_dir / Path(RGBN.teacher).name).read_text()
    assert f"{data}/band_stats.json" in dumped
    exported = torch.load(tmp_path / "work" / "distilled_student.pth", weights_only=True)
    assert exported["state_dict"]["backbone.conv1.weight"].shape[1] == 4
    report = (tmp_path / "work" / "report.md").read_text()
    assert "could not be drawn" not in report
    for name in ("curves.png", "spectral.png", "detections.png"):
        assert_png(tmp_path / "work" / "report" / name)
