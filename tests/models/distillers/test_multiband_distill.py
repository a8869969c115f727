"""The spectral streams with 1, 4 and 13 input bands: rasters written with tifffile, loaded by
LoadMultiBandImage + mmdet's Resize + PackDetInputs, normalised by MultiBandDetDataPreprocessor,
one SpectralDistiller iteration each (tiny RetinaNets, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, tiny_retinanet

tifffile = pytest.importorskip("tifffile")

SIZE = 64
BOXES = [[4.0, 6.0, 30.0, 28.0], [36.0, 30.0, 60.0, 58.0]]


def write_rasters(folder, bands: int, dtype) -> list[str]:
    """Two (SIZE, SIZE, bands) rasters with bright boxes, band-sequential (C, H, W) files."""
    rng = np.random.default_rng(bands)
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    paths = []
    for i in range(2):
        img = rng.uniform(0, 0.3 * top, (bands, SIZE, SIZE))
        for x1, y1, x2, y2 in BOXES:
            img[:, int(y1):int(y2), int(x1):int(x2)] += 0.5 * top
        path = folder / f"img{i}.tif"
        tifffile.imwrite(path, img.astype(dtype), photometric="minisblack",
                         planarconfig="separate" if bands > 1 else None)
        paths.append(str(path))
    return paths


def packed_batch(paths: list[str], bands: int) -> dict:
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate

    pipe = Compose([dict(type="LoadMultiBandImage", expected_bands=bands),
                    dict(type="LoadAnnotations", with_bbox=True),
                    dict(type="Resize", scale=(SIZE + 16, SIZE + 16), keep_ratio=True),
                    dict(type="RandomFlip", prob=0.5),
                    dict(type="PackDetInputs")])
    items = []
    for i, path in enumerate(paths):
        instances = [dict(bbox=box, bbox_label=j % 3, ignore_flag=0)
                     for j, box in enumerate(BOXES)]
        items.append(pipe(dict(img_path=path, img_id=i, instances=instances)))
    return pseudo_collate(items)


def multiband_detector(bands: int, mean, std, width: int, fpn: int) -> dict:
    cfg = tiny_retinanet(width=width, fpn=fpn)
    cfg["backbone"]["in_channels"] = bands
    cfg["data_preprocessor"] = dict(type="MultiBandDetDataPreprocessor", mean=mean, std=std,
                                    pad_size_divisor=32)
    return cfg


@pytest.mark.parametrize("bands,dtype", [(1, np.uint8), (4, np.uint16), (13, np.float32)])
def test_one_distillation_iteration_with_any_band_count(tmp_path, bands, dtype):
    from ds2d2_mm.datasets import BandStatsAccumulator, read_raster

    paths = write_rasters(tmp_path, bands, dtype)
    acc = BandStatsAccumulator()
    for path in paths:
        acc.update(read_raster(path), path)
    stats = acc.result()
    mean, std = stats["mean"], stats["std"]
    assert len(mean) == bands

    student = multiband_detector(bands, mean, std, width=8, fpn=16)
    teacher = multiband_detector(bands, mean, std, width=16, fpn=32)
    model = build(distiller_cfg(student, teacher))
    model.train()
    data = model.data_preprocessor(packed_batch(paths, bands), True)
    inputs, samples = data["inputs"], data["data_samples"]
    assert inputs.shape[:2] == (2, bands) and inputs.shape[-1] % 32 == 0
    assert abs(float(inputs[:, :, :SIZE, :SIZE].mean())) < 1.0  # normalised by the band stats
    assert all(len(s.gt_instances) == len(BOXES) for s in samples)

    losses = model.loss(inputs, samples)
    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"):
        assert torch.isfinite(losses[key]).all(), key
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    stem = model.student.backbone.conv1.weight
    assert stem.shape[1] == bands and stem.grad is not None and stem.grad.abs().sum() > 0
    assert model.teacher.backbone.conv1.weight.grad is None


def test_preprocessor_normalises_any_band_count_and_names_mismatches():
    from mmdet.registry import MODELS

    from ds2d2_mm.utils.errors import ConfigError

    mean, std = list(range(13)), [2.0] * 13
    pre = MODELS.build(dict(type="MultiBandDetDataPreprocessor", mean=mean, std=std))
    img = torch.rand(13, 8, 8) * 255
    out = pre(dict(inputs=[img], data_samples=None))["inputs"]
    expected = (img - torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)) / 2.0
    torch.testing.assert_close(out[0], expected)
    with pytest.raises(ConfigError, match=r"images with \[4\] bands, but mean/std have 13"):
        pre(dict(inputs=[torch.zeros(4, 8, 8)], data_samples=None))
    with pytest.raises(ConfigError, match="3-band images only"):
        MODELS.build(dict(type="MultiBandDetDataPreprocessor", mean=[0] * 4, std=[1] * 4,
                          bgr_to_rgb=True))
    with pytest.raises(ConfigError, match="mean has 4 values and std 3"):
        MODELS.build(dict(type="MultiBandDetDataPreprocessor", mean=[0] * 4, std=[1] * 3))


def test_preprocessor_reads_a_stats_file_and_matches_mmdet_for_three_bands(tmp_path):
    import json

    from mmdet.registry import MODELS

    stats = tmp_path / "band_stats.json"
    stats.write_text(json.dumps({"bands": 3, "mean": [10.0, 20.0, 30.0], "std": [2, 4, 8]}))
    ours = MODELS.build(dict(type="MultiBandDetDataPreprocessor", stats_file=str(stats),
                             bgr_to_rgb=True, pad_size_divisor=32))
    ref = MODELS.build(dict(type="DetDataPreprocessor", mean=[10.0, 20.0, 30.0],
                            std=[2, 4, 8], bgr_to_rgb=True, pad_size_divisor=32))
    img = torch.rand(3, 40, 50) * 255
    torch.testing.assert_close(ours(dict(inputs=[img]))["inputs"],
                               ref(dict(inputs=[img]))["inputs"])


def test_student_and_teacher_with_other_band_counts_is_a_config_error():
    from ds2d2_mm.utils.errors import ConfigError

    student = multiband_detector(4, [0.0] * 4, [1.0] * 4, width=8, fpn=16)
    teacher = tiny_retinanet(width=16, fpn=32)  # RGB, mmdet's ImageNet normalisation
    with pytest.raises(ConfigError, match="student's preprocessor normalises 4 bands, the "
                                          "teacher's 3"):
        build(distiller_cfg(student, teacher))


def test_registered_in_mmdet_and_mmrotate_scopes():
    from mmdet import registry as det

    assert det.TRANSFORMS.get("LoadMultiBandImage") is not None
    assert det.MODELS.get("MultiBandDetDataPreprocessor") is not None
    assert det.WEIGHT_INITIALIZERS.get("PretrainedInflated") is not None
    rot = pytest.importorskip("mmrotate.registry")
    assert rot.TRANSFORMS.get("LoadMultiBandImage") is not None
    assert rot.MODELS.get("MultiBandDetDataPreprocessor") is not None
    assert rot.WEIGHT_INITIALIZERS.get("PretrainedInflated") is not None
