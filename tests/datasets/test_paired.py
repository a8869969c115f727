"""Paired (multi-modality) samples: DroneVehicleDataset / PairedCocoDataset + LoadPairedImages
on files written by the test, identical geometry of both modalities after Resize / RandomFlip,
per-modality normalisation, and the errors a user can cause."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers

from crossmodal_testlib import (  # noqa: E402
    IR_MEAN,
    IR_STD,
    OBJECTS,
    RGB_MEAN,
    RGB_STD,
    SIZE,
    paired_dataset,
    paired_pipeline,
    paired_preprocessor,
    write_paired,
)

from ds2d2_mm.utils.errors import (
    ConfigError,  # noqa: E402
    ImageError,
)


def test_sample_carries_both_paths_and_stacks_rgb_then_ir(tmp_path):
    write_paired(tmp_path)
    ds = paired_dataset(tmp_path, pipeline=[dict(type="LoadPairedImages",
                                                 modalities=dict(rgb=3, ir=1))])
    assert ds.modalities == ("rgb", "ir")
    info = ds.get_data_info(0)
    assert info["img_paths"] == {"rgb": str(tmp_path / "train/rgb/00000.png"),
                                 "ir": str(tmp_path / "train/ir/00000.png")}
    assert info["img_path"] == info["img_paths"]["rgb"]
    out = ds[0]
    img = out["img"]
    assert img.shape == (SIZE, SIZE, 4) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[..., :3], cv2.imread(info["img_paths"]["rgb"]))
    np.testing.assert_array_equal(img[..., 3], cv2.imread(info["img_paths"]["ir"], 0))
    assert out["modality_channels"] == {"rgb": (0, 3), "ir": (3, 4)}


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_resize_and_flip_move_both_modalities_and_the_boxes_alike(tmp_path, direction):
    write_paired(tmp_path)
    pipeline = paired_pipeline(flip_prob=1.0, scale=(2 * SIZE, 2 * SIZE))
    pipeline[2]["interpolation"] = "nearest"  # exact masks to compare
    pipeline[3]["direction"] = direction
    sample = paired_dataset(tmp_path, pipeline=pipeline)[0]
    img = sample["inputs"].numpy()  # (4, 2*SIZE, 2*SIZE)
    assert img.shape == (4, 2 * SIZE, 2 * SIZE)
    assert sample["data_samples"].metainfo["flip_direction"] == direction
    # each object is bright in the RGB green channel and in the infrared, at the same pixels,
    # and where its (transformed) box says
    rgb_mask, ir_mask = img[1] > 150, img[3] > 240
    np.testing.assert_array_equal(rgb_mask, ir_mask)
    boxes = sample["data_samples"].gt_instances.bboxes.tensor.numpy()
    assert len(boxes) == len(OBJECTS)
    for x1, y1, x2, y2 in boxes:
        inner = rgb_mask[int(y1) + 2:int(y2) - 2, int(x1) + 2:int(x2) - 2]
        assert inner.size and inner.all()
    assert rgb_mask.sum() == pytest.approx(
        sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in boxes), rel=0.1)
    # the ramps: RGB blue rises left to right, infrared top to bottom, before the flip
    blue, ir = img[0].astype(float), img[3].astype(float)
    dx = np.sign(blue[5, -5] - blue[5, 4])
    dy = np.sign(ir[-5, 40] - ir[4, 40])
    assert dx == (-1 if direction in ("horizontal", "diagonal") else 1)
    assert dy == (-1 if direction in ("vertical", "diagonal") else 1)


def test_rotated_pipeline_reads_the_polygons_as_rotated_boxes(tmp_path):
    pytest.importorskip("mmrotate")
    from mmengine.registry import init_default_scope
    from mmrotate.registry import DATASETS

    write_paired(tmp_path)
    init_default_scope("mmrotate")
    try:
        ds = DATASETS.build(dict(
            type="DroneVehicleDataset", data_root=str(tmp_path),
            ann_file="annotations/train.json", metainfo=dict(classes=("car", "truck", "bus")),
            data_prefix=dict(rgb="train/rgb/", ir="train/ir/"),
            pipeline=[dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=1)),
                      dict(type="mmdet.LoadAnnotations", with_bbox=True, with_mask=True,
                           poly2mask=False),
                      dict(type="ConvertMask2BoxType", box_type="rbox"),
                      dict(type="mmdet.Resize", scale=(2 * SIZE, 2 * SIZE), keep_ratio=True),
                      dict(type="mmdet.RandomFlip", prob=1.0, direction="vertical"),
                      dict(type="mmdet.PackDetInputs",
                           meta_keys=("img_id", "img_path", "img_shape", "scale_factor",
                                      "modality_channels"))]))
        sample = ds[0]
    finally:
        init_default_scope("mmdet")
    boxes = sample["data_samples"].gt_instances.bboxes
    assert type(boxes).__name__ == "RotatedBoxes" and boxes.tensor.shape == (len(OBJECTS), 5)
    x1, y1, x2, y2, _ = OBJECTS[0]
    cx, cy = (x1 + x2), 2 * SIZE - (y1 + y2)  # scaled by 2, then flipped vertically
    assert boxes.tensor[0, :2].tolist() == pytest.approx([cx, cy], abs=1.0)
    assert sample["inputs"].shape[0] == 4


def test_tiff_modality_and_per_modality_normalisation(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from mmcv.transforms import Compose
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate

    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), rgb)
    ms = np.random.default_rng(1).uniform(0, 4000, (2, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", ms, photometric="minisblack", planarconfig="separate")
    stats = tmp_path / "ms_stats.json"
    stats.write_text(json.dumps({"bands": 2, "mean": [1000.0, 2000.0], "std": [500.0, 250.0]}))
    pipe = Compose([dict(type="LoadPairedImages", modalities=dict(rgb=3, ms=2)),
                    dict(type="PackDetInputs",
                         meta_keys=("img_path", "img_shape", "modality_channels"))])
    sample = pipe(dict(img_paths=dict(rgb=str(tmp_path / "a.png"), ms=str(tmp_path / "a.tif"))))
    assert sample["inputs"].shape == (5, 16, 16)
    assert sample["inputs"].dtype == torch.float32  # uint8 + uint16: float32
    pre = MODELS.build(dict(type="MultiBandDetDataPreprocessor", modalities=dict(
        rgb=dict(mean=RGB_MEAN, std=RGB_STD, bgr_to_rgb=True), ms=dict(stats_file=str(stats)))))
    assert pre.modality_channels == {"rgb": (0, 3), "ms": (3, 5)}
    out = pre(pseudo_collate([sample]))["inputs"][0]
    rgb_t = torch.from_numpy(rgb[..., ::-1].copy()).permute(2, 0, 1).float()
    mean, std = torch.tensor(RGB_MEAN).view(3, 1, 1), torch.tensor(RGB_STD).view(3, 1, 1)
    torch.testing.assert_close(out[:3], (rgb_t - mean) / std)
    ms_t = torch.from_numpy(ms.astype(np.float32))
    torch.testing.assert_close(
        out[3:], (ms_t - torch.tensor([1000.0, 2000.0]).view(2, 1, 1))
        / torch.tensor([500.0, 250.0]).view(2, 1, 1))


def test_preprocessor_refuses_a_layout_other_than_the_loaders(tmp_path):
    from mmdet.registry import MODELS
    from mmengine.dataset import pseudo_collate

    write_paired(tmp_path)
    batch = pseudo_collate([paired_dataset(tmp_path)[0]])
    cfg = paired_preprocessor()
    cfg["modalities"] = dict(ir=dict(mean=IR_MEAN, std=IR_STD),
                             rgb=dict(mean=RGB_MEAN, std=RGB_STD, bgr_to_rgb=True))
    with pytest.raises(ConfigError, match=r"stacked the modalities as \{'rgb': \(0, 3\), "
                                          r"'ir': \(3, 4\)\}.*normalises them as \{'ir': \(0, 1\)"):
        MODELS.build(cfg)(batch)


@pytest.mark.parametrize("modalities,message", [
    (dict(rgb=dict(mean=[1.0], std=[1.0], bgr_to_rgb=True)),
     r"modalities\.rgb: bgr_to_rgb swaps the channels of a 3-channel modality, this one has 1"),
    (dict(ir=dict(mean=[1.0])), r"modalities\.ir: mean and std go together"),
    (dict(ir=dict(mean=[1.0], std=[1.0], sdt=[2.0])), r"modalities\.ir: unknown keys \['sdt'\]"),
    (dict(ir=dict()), r"modalities\.ir needs mean/std or stats_file"),
    ({}, r"modalities must be a non-empty dict"),
])
def test_bad_preprocessor_modalities_name_the_key(modalities, message):
    from mmdet.registry import MODELS

    with pytest.raises(ConfigError, match=message):
        MODELS.build(dict(type="MultiBandDetDataPreprocessor", modalities=modalities))


def test_loader_errors_name_the_file_or_the_modality(tmp_path):
    from mmcv.transforms import Compose

    write_paired(tmp_path)
    load = Compose([dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=1))])
    rgb, ir = tmp_path / "train/rgb/00000.png", tmp_path / "train/ir/00000.png"
    with pytest.raises(ConfigError, match=r"modalities \['ir'\] have no image folder; the "
                                          r"dataset gives \['rgb'\]"):
        load(dict(img_paths=dict(rgb=str(rgb))))
    with pytest.raises(ConfigError, match="has no 'img_paths'; use a paired dataset"):
        load(dict(img_path=str(rgb)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError, match=r"bad\.png: cannot decode"):
        load(dict(img_paths=dict(rgb=str(rgb), ir=str(bad))))
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((10, 12), np.uint8))
    with pytest.raises(ImageError, match=r"small\.png: modality 'ir' is 12x10 but .*00000\.png "
                                         r"is 64x64"):
        load(dict(img_paths=dict(rgb=str(rgb), ir=str(small))))
    # an infrared file where a 3-channel modality is expected
    with pytest.raises(ImageError, match="has 1 channels but its modality is configured with 3"):
        load(dict(img_paths=dict(rgb=str(ir), ir=str(ir))))
    with pytest.raises(ConfigError, match=r"modalities\.ir\.channels must be an integer >= 1"):
        Compose([dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=0))])


def test_colour_infrared_jpeg_reads_as_one_channel(tmp_path):
    from mmcv.transforms import Compose

    gray = (np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint8)
    path = tmp_path / "ir.png"  # lossless: the three equal channels of a colour IR file
    cv2.imwrite(str(path), np.repeat(gray[..., None], 3, axis=-1))
    out = Compose([dict(type="LoadPairedImages", modalities=dict(ir=1))])(
        dict(img_paths=dict(ir=str(path))))
    assert out["img"].shape == (32, 32, 1)
    np.testing.assert_array_equal(out["img"][..., 0], gray)


def test_img_prefix_alone_is_a_plain_dataset_and_both_is_refused(tmp_path):
    from mmdet.registry import DATASETS

    write_paired(tmp_path)
    common = dict(type="DroneVehicleDataset", data_root=str(tmp_path),
                  ann_file="annotations/train.json", metainfo=dict(classes=("car", "truck", "bus")),
                  pipeline=[])
    plain = DATASETS.build(dict(common, data_prefix=dict(img="train/ir/")))
    assert plain.modalities == ()
    info = plain.get_data_info(0)
    assert info["img_path"] == str(tmp_path / "train/ir/00000.png") and "img_paths" not in info
    with pytest.raises(ConfigError, match="data_prefix has both 'img' and modality folders"):
        DATASETS.build(dict(common, data_prefix=dict(img="train/ir/", rgb="train/rgb/")))
