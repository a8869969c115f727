"""The SAR recipe (configs/sar: mmrotate's SSDD / HRSID Oriented R-CNN with one input band) and the
generic multi-band COCO configs (configs/multiband): every config builds and trains one iteration
(random init, CPU); the SSDD distillation config runs one iteration on a tiny SSDD-format folder
through its own data pipeline."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ds2d2_testlib import REPO, load_config

mmrotate = pytest.importorskip("mmrotate")

SAR = sorted((REPO / "configs" / "sar").glob("[!_]*.py"))
MULTIBAND = sorted((REPO / "configs" / "multiband").glob("[!_]*.py"))
_INITS = ("Pretrained", "PretrainedInflated")


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def offline(cfg: dict) -> dict:
    """``cfg`` with every (inflated) pretrained init_cfg set to None, in place."""
    for value in cfg.values():
        if isinstance(value, dict):
            offline(value)
    init = cfg.get("init_cfg")
    if isinstance(init, dict) and init.get("type") in _INITS:
        cfg["init_cfg"] = None
    return cfg


def model_cfg(path: Path) -> dict:
    model = offline(load_config(path).model.to_dict())
    if model["type"] == "SpectralDistiller":
        for key in ("teacher_config", "amplifier_config"):
            assert Path(model[key]).is_file(), (path, key)
        model.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model["type"] == "HighFrequencyAmplifier":
        model["teacher_ckpt"] = None
    return model


def inner(model: dict) -> dict:
    return model.get("student") or model.get("detector") or model


def build_in(scope: str, cfg: dict):
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(ConfigDict(copy.deepcopy(cfg)))
        model.init_weights()
    return model.train()


def random_batch(model, bands: int, rotated: bool, size: int = 64):
    torch.manual_seed(0)
    if rotated:
        from mmrotate.testing import demo_mm_inputs

        # (mmrotate's helper draws labels below num_classes - 1: ask for 2, keep class 0)
        packed = demo_mm_inputs(batch_size=2, image_shapes=[(bands, size, size)] * 2,
                                num_items=[3, 2], num_classes=2, use_box_type=True)
        for sample in packed["data_samples"]:
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
    else:
        from mmdet.testing import demo_mm_inputs

        packed = demo_mm_inputs(batch_size=2, image_shapes=[(bands, size, size)] * 2,
                                num_items=[3, 2], num_classes=2)
    data = model.data_preprocessor(packed, True)
    return data["inputs"], data["data_samples"]


def total(losses: dict) -> torch.Tensor:
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)


@pytest.mark.parametrize("path", SAR, ids=rel)
def test_sar_config_is_one_band_and_trains_one_iteration(path, rotate_scope):
    cfg = load_config(path)
    assert cfg.default_scope == "mmrotate"
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        first = cfg[loader].dataset.pipeline[0]
        assert first.type == "mmdet.LoadImageFromFile" and first.color_type == "grayscale"
    assert cfg.test_pipeline[0].color_type == "grayscale"
    model_dict = model_cfg(path)
    det = inner(model_dict)
    assert det["backbone"]["in_channels"] == 1
    assert det["data_preprocessor"]["type"] == "MultiBandDetDataPreprocessor"
    model = build_in("mmrotate", model_dict)
    inputs, samples = random_batch(model, 1, rotated=True)
    assert inputs.shape[1] == 1
    loss = total(model.loss(inputs, samples))
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None for p in model.parameters())


def test_sar_backbones_start_from_inflated_imagenet_weights():
    for path in SAR:
        det = inner(load_config(path).model.to_dict())
        init = det["backbone"]["init_cfg"]
        depth = det["backbone"]["depth"]
        assert init["type"] == "PretrainedInflated", path
        assert init["checkpoint"] == f"torchvision://resnet{depth}", path


@pytest.fixture
def multiband_root(tmp_path, monkeypatch):
    """A working directory with the band statistics the multi-band configs name (4 bands)."""
    root = tmp_path / "data" / "multiband"
    root.mkdir(parents=True)
    (root / "band_stats.json").write_text(json.dumps(
        {"bands": 4, "mean": [300.0, 400.0, 500.0, 900.0], "std": [50.0, 60.0, 70.0, 200.0]}))
    monkeypatch.chdir(tmp_path)
    return root


@pytest.mark.parametrize("path", MULTIBAND, ids=rel)
def test_multiband_config_trains_one_iteration(path, multiband_root):
    cfg = load_config(path)
    assert cfg.train_dataloader.dataset.pipeline[0].type == "LoadMultiBandImage"
    assert cfg.train_dataloader.dataset.metainfo.classes == cfg.classes
    model_dict = model_cfg(path)
    det = inner(model_dict)
    assert det["backbone"]["in_channels"] == cfg.bands == 4
    assert det["bbox_head"]["num_classes"] == len(cfg.classes)
    model = build_in("mmdet", model_dict)
    inputs, samples = random_batch(model, 4, rotated=False)
    assert torch.allclose(model.data_preprocessor.mean.flatten(),
                          torch.tensor([300.0, 400.0, 500.0, 900.0]))
    loss = total(model.loss(inputs, samples))
    assert torch.isfinite(loss)
    loss.backward()


# --------------------------------------------------------------------------------------------
# One iteration of the SSDD distillation config on SSDD-format data
# --------------------------------------------------------------------------------------------

SIZE = 64


def _ship(cx: float, cy: float, length: float, width: float, angle: float) -> np.ndarray:
    u = np.array([np.cos(angle), np.sin(angle)])
    v = np.array([-np.sin(angle), np.cos(angle)])
    return np.array([[cx, cy] + a * length / 2 * u + b * width / 2 * v
                     for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def write_ssdd(root: Path) -> None:
    """SSDD as mmrotate's ssdd.py reads it: train/images + train/train.json and test/all/...,
    COCO json whose ships are polygons (segmentation), grey SAR-like JPEGs stored as 3 equal
    channels."""
    rng = np.random.default_rng(0)
    for split, ann, folder in (("train", "train/train.json", "train/images"),
                               ("test", "test/all/test.json", "test/all/images")):
        images, annotations = [], []
        (root / folder).mkdir(parents=True)
        for i in range(2):
            grey = rng.gamma(4.0, 10.0, (SIZE, SIZE))
            for k in range(2):
                poly = _ship(16 + 30 * k, 20 + 24 * i, 20, 6, 0.4 + k)
                cv2.fillPoly(grey, [np.round(poly).astype(np.int32)], 220)
                x1, y1 = poly.min(0)
                x2, y2 = poly.max(0)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "area": float((x2 - x1) * (y2 - y1)), "iscrowd": 0,
                    "segmentation": [poly.ravel().round(2).tolist()]})
            name = f"{split}{i:04d}.jpg"
            cv2.imwrite(str(root / folder / name),
                        np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, -1))
            images.append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        (root / ann).write_text(json.dumps({"images": images, "annotations": annotations,
                                            "categories": [{"id": 1, "name": "ship"}]}))


def shrink(det: dict, width: int, fpn: int) -> dict:
    """An Oriented R-CNN dict narrowed to a ResNet-18 of ``width`` channels, in place."""
    det["backbone"].update(depth=18, base_channels=width, frozen_stages=-1, norm_eval=False,
                           init_cfg=None)
    det["neck"].update(in_channels=[width * 2**i for i in range(4)], out_channels=fpn)
    det["rpn_head"].update(in_channels=fpn, feat_channels=fpn)
    det["roi_head"]["bbox_roi_extractor"]["out_channels"] = fpn
    det["roi_head"]["bbox_head"].update(in_channels=fpn, fc_out_channels=32)
    det["train_cfg"]["rcnn"]["sampler"]["num"] = 64
    return det


def test_ssdd_distillation_runs_one_iteration_on_ssdd_format_data(tmp_path, rotate_scope):
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    from mmrotate.registry import DATASETS

    write_ssdd(tmp_path)
    cfg = load_config(REPO / "configs" / "sar" / "oriented_rcnn_r101_r18_ssdd.py")
    teacher_cfg = load_config(cfg.model.teacher_config)
    dataset_cfg = cfg.train_dataloader.dataset.to_dict()
    dataset_cfg["data_root"] = str(tmp_path) + "/"
    with DefaultScope.overwrite_default_scope("mmrotate"):
        dataset = DATASETS.build(dataset_cfg)
        items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == 2
    for item in items:  # one band, the JPEG's grey values, resized by the config's pipeline
        assert item["inputs"].shape[0] == 1 and max(item["inputs"].shape[1:]) == 512
        assert item["data_samples"].gt_instances.bboxes.tensor.shape == (2, 5)

    teacher = shrink(offline(teacher_cfg.model.to_dict()), width=16, fpn=32)
    model_dict = offline(cfg.model.to_dict())
    model_dict.update(
        student=shrink(model_dict["student"], width=8, fpn=32),
        teacher_config=dict(model=teacher), teacher_ckpt=None,
        amplifier_config=dict(model=dict(type="HighFrequencyAmplifier",
                                         detector=copy.deepcopy(teacher), decomposer="haar")),
        amplifier_ckpt=None, allow_random_teacher=True)
    model = build_in("mmrotate", model_dict)
    data = model.data_preprocessor(pseudo_collate(items), True)
    inputs = data["inputs"]
    assert inputs.shape[:2] == (2, 1)
    raw = torch.stack([i["inputs"].float() for i in items])
    torch.testing.assert_close(inputs, (raw - 114.495) / 57.63)
    losses = model.loss(inputs, data["data_samples"])
    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"):
        assert torch.isfinite(losses[key]), key
    total(losses).backward()
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.shape[1] == 1


def test_grey_loader_returns_the_band_of_a_three_channel_replica(tmp_path):
    from mmcv.transforms import LoadImageFromFile

    band = np.random.default_rng(1).integers(0, 256, (32, 48), dtype=np.uint8)
    path = tmp_path / "replica.png"  # lossless: the exact band comes back
    cv2.imwrite(str(path), np.repeat(band[..., None], 3, -1))
    cfg = load_config(REPO / "configs" / "sar" / "oriented_rcnn_r101_ssdd.py")
    loader_cfg = cfg.train_dataloader.dataset.pipeline[0].to_dict()
    loader_cfg.pop("type")
    out = LoadImageFromFile(**loader_cfg)(dict(img_path=str(path)))
    np.testing.assert_array_equal(out["img"], band)


@pytest.mark.parametrize("name", ["oriented_rcnn_ssdd", "oriented_rcnn_hrsid",
                                  "retina_coco_multiband"])
def test_presets_name_existing_configs(name):
    from ds2d2_mm.tooling.pipeline import PRESETS

    preset = PRESETS[name]
    for config in (preset.teacher, preset.amplifier, preset.baseline, preset.distill):
        assert (REPO / config).is_file(), config
