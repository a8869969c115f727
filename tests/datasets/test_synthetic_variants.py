"""Sensor variants of the built-in synthetic scenes (sar, rgbn, paired): deterministic, the RGB
scenes' boxes, the right bands and dtypes, speckle with the stated statistics, band statistics
as ds2d2-band-stats computes them, the RGB default untouched."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ds2d2_mm.datasets.raster import read_raster
from ds2d2_mm.tooling.synthetic import (
    BAND_STATS_FILE,
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    synthetic_dataset_is_complete,
)
from ds2d2_mm.tooling.synthetic.scene import render_scene
from ds2d2_mm.tooling.synthetic.variants import (
    DEFAULT_LOOKS,
    DN_PER_LEVEL,
    apply_speckle,
    object_masks,
    sar_reflectivity,
    variant_rng,
)

REPO = Path(__file__).resolve().parents[2]
PARAMS = dict(num_train=3, num_val=2, num_test=1, img_size=96, seed=7)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for variant in ("rgb", "sar", "rgbn", "paired"):
        generate_synthetic_dataset(root / variant, **PARAMS, variant=variant)
        out[variant] = root / variant
    return out


def _coco(root: Path, split: str) -> dict:
    return json.loads((root / "annotations" / f"{split}.json").read_text())


def test_every_variant_has_the_rgb_scenes_boxes(made):
    for split in ("train", "val", "test"):
        reference = _coco(made["rgb"], split)
        for variant in ("sar", "rgbn", "paired"):
            coco = _coco(made[variant], split)
            assert coco["annotations"] == reference["annotations"], (variant, split)
            assert coco["categories"] == reference["categories"]
            assert [im["id"] for im in coco["images"]] == [im["id"] for im in reference["images"]]
            folders = [f"{split}/rgb", f"{split}/ir"] if variant == "paired" else [""]
            for im in coco["images"]:
                for folder in folders:
                    assert (made[variant] / folder / im["file_name"]).is_file()


def test_sar_is_one_band_float_intensity_bright_on_targets(made):
    coco = _coco(made["sar"], "train")
    for im in coco["images"]:
        assert im["file_name"].endswith(".tif")
        img = read_raster(made["sar"] / im["file_name"])
        assert img.shape == (96, 96, 1) and img.dtype == np.float32
        assert (img >= 0).all() and np.isfinite(img).all()
    # targets are bright: the mean inside the boxes of an image is far above the clutter
    rgb, objects = render_scene(np.random.default_rng([7, 0, 0]), 96)
    img = read_raster(made["sar"] / "images/train/00000.tif")[..., 0]
    on = np.clip(sum(object_masks(objects, 96)), 0, 1) > 0.5
    assert on.any() and img[on].mean() > 5 * img[~on].mean()


def test_sar_speckle_is_gamma_of_the_reflectivity(made):
    """The file divided by the speckle-free reflectivity, recomputed from the scene, is the
    speckle alone: mean 1 and coefficient of variation 1 / sqrt(L)."""
    rgb, objects = render_scene(np.random.default_rng([7, 0, 1]), 96)
    rng = variant_rng(7, 0, 1, "sar")
    sigma = sar_reflectivity(rgb, objects, rng)
    img = read_raster(made["sar"] / "images/train/00001.tif")[..., 0]
    ratio = img / sigma
    n = ratio.size  # 9216 independent values: the mean's standard error is 0.5 / 96 ~ 0.005
    assert abs(ratio.mean() - 1.0) < 4 * 0.5 / np.sqrt(n)
    assert ratio.std() / ratio.mean() == pytest.approx(1 / np.sqrt(DEFAULT_LOOKS), rel=0.05)
    marker = json.loads((made["sar"] / ".complete.json").read_text())
    assert marker["params"]["variant"] == "sar" and marker["params"]["looks"] == DEFAULT_LOOKS


@pytest.mark.parametrize("looks", [1, 4, 16])
def test_speckle_on_a_flat_region(looks):
    flat = np.full((200, 200), 0.25, np.float32)
    out = apply_speckle(np.random.default_rng(0), flat, looks)
    assert out.dtype == np.float32
    assert out.mean() == pytest.approx(0.25, rel=0.02)
    assert out.std() / out.mean() == pytest.approx(1 / np.sqrt(looks), rel=0.03)
    with pytest.raises(ValueError, match="looks"):
        apply_speckle(np.random.default_rng(0), flat, 0)


def test_looks_change_the_sar_files_and_the_marker(tmp_path, made):
    params = {**PARAMS, "num_train": 1, "num_val": 1, "num_test": 0}
    generate_synthetic_dataset(tmp_path, **params, variant="sar", looks=1)
    one = read_raster(tmp_path / "images/train/00000.tif")[..., 0]
    four = read_raster(made["sar"] / "images/train/00000.tif")[..., 0]
    assert one.std() / one.mean() > four.std() / four.mean()
    assert synthetic_dataset_is_complete(tmp_path, **params, variant="sar", looks=1)
    assert not synthetic_dataset_is_complete(tmp_path, **params, variant="sar")
    with pytest.raises(ValueError, match="looks applies to the sar variant only"):
        generate_synthetic_dataset(tmp_path / "x", **params, variant="rgbn", looks=2)
    with pytest.raises(ValueError, match="variant must be one of"):
        generate_synthetic_dataset(tmp_path / "x", **params, variant="lidar")
    with pytest.raises(ValueError, match="num_train must be >= 1"):
        generate_synthetic_dataset(tmp_path / "x", **{**params, "num_train": 0}, variant="sar")
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_rgbn_is_four_uint16_bands_rgb_exact_and_nir_bright_on_vegetation(made):
    coco = _coco(made["rgbn"], "val")
    for im in coco["images"]:
        img = read_raster(made["rgbn"] / im["file_name"])
        rgb = cv2.imread(str(made["rgb"] / im["file_name"].replace(".tif", ".png")))[..., ::-1]
        assert img.shape == (96, 96, 4) and img.dtype == np.uint16
        np.testing.assert_array_equal(img[..., :3], rgb.astype(np.uint16) * DN_PER_LEVEL)
        assert img.max() <= 4095
    # vegetation (green-dominant pixels) is brighter in NIR than in red; objects are not
    rgb, objects = render_scene(np.random.default_rng([7, 0, 2]), 96)
    img = read_raster(made["rgbn"] / "images/train/00002.tif").astype(np.float64)
    on = np.clip(sum(object_masks(objects, 96)), 0, 1) > 0.9
    green = (rgb[..., 1].astype(int) - np.maximum(rgb[..., 0], rgb[..., 2]) > 20) & ~on
    assert green.sum() > 50 and on.sum() > 20
    nir_over_red = img[..., 3] / np.maximum(img[..., 0], 1)
    assert nir_over_red[green].mean() > 1.3 > nir_over_red[on].mean()


def test_paired_layout_rgb_bytes_and_warm_objects(made):
    root = made["paired"]
    assert not (root / "images").exists() and not (root / "labelTxt").exists()
    for split, count in (("train", 3), ("val", 2), ("test", 1)):
        coco = _coco(root, split)
        names = [f"{i:05d}" for i in range(count)]
        assert [im["file_name"] for im in coco["images"]] == [f"{n}.png" for n in names]
        for n in names:  # the RGB image is the default dataset's, byte for byte
            assert (root / split / "rgb" / f"{n}.png").read_bytes() == \
                (made["rgb"] / "images" / split / f"{n}.png").read_bytes()
            ir = cv2.imread(str(root / split / "ir" / f"{n}.png"), cv2.IMREAD_UNCHANGED)
            assert ir.shape == (96, 96) and ir.dtype == np.uint8
    rgb, objects = render_scene(np.random.default_rng([7, 1, 0]), 96)
    ir = cv2.imread(str(root / "val/ir/00000.png"), cv2.IMREAD_UNCHANGED).astype(float)
    on = np.clip(sum(object_masks(objects, 96)), 0, 1) > 0.9
    assert ir[on].mean() > ir[~on].mean() + 40


def test_paired_variant_loads_through_the_paired_dataset(made):
    """The generator's paired layout is the one PairedCocoDataset + LoadPairedImages read: each
    sample stacks the RGB file (BGR as OpenCV loads it) and the IR file, with the json's boxes."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    from ds2d2_mm.datasets import SYNTHETIC_CLASSES

    init_default_scope("mmdet")
    root = made["paired"]
    ds = DATASETS.build(dict(
        type="PairedCocoDataset", data_root=str(root), ann_file="annotations/val.json",
        metainfo=dict(classes=SYNTHETIC_CLASSES), data_prefix=dict(rgb="val/rgb/", ir="val/ir/"),
        filter_cfg=None, pipeline=[dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=1)),
                                   dict(type="LoadAnnotations", with_bbox=True)]))
    coco = _coco(root, "val")
    assert len(ds) == len(coco["images"])
    sample = ds[1]
    name = coco["images"][1]["file_name"]
    rgb = cv2.imread(str(root / "val" / "rgb" / name), cv2.IMREAD_COLOR)
    ir = cv2.imread(str(root / "val" / "ir" / name), cv2.IMREAD_UNCHANGED)
    assert sample["img"].shape == (96, 96, 4)
    np.testing.assert_array_equal(sample["img"][..., :3], rgb)
    np.testing.assert_array_equal(sample["img"][..., 3], ir)
    assert sample["modality_channels"] == {"rgb": (0, 3), "ir": (3, 4)}
    image_id = coco["images"][1]["id"]
    boxes = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image_id]
    got = sample["gt_bboxes"].tensor.numpy()
    np.testing.assert_allclose(got[:, 2:] - got[:, :2], [b[2:] for b in boxes], atol=1e-3)


def test_band_stats_are_those_of_the_band_stats_tool(made, tmp_path):
    sys.path.insert(0, str(REPO / "tools" / "data"))
    import band_stats

    for variant, bands in (("sar", 1), ("rgbn", 4)):
        written = json.loads((made[variant] / BAND_STATS_FILE).read_text())
        out = tmp_path / f"{variant}.json"
        assert band_stats.main([str(made[variant] / "images" / "train"), "--out", str(out),
                                "--no-progress"]) == 0
        assert written == json.loads(out.read_text())
        assert written["bands"] == bands and written["files"] == PARAMS["num_train"]
    assert not (made["rgb"] / BAND_STATS_FILE).exists()
    assert not (made["paired"] / BAND_STATS_FILE).exists()


def test_variants_are_deterministic_and_the_rgb_default_unchanged(made, tmp_path):
    for variant in ("sar", "rgbn", "paired"):
        again = tmp_path / variant
        generate_synthetic_dataset(again, **PARAMS, variant=variant)
        assert _files(again) == _files(made[variant]), variant
    default = tmp_path / "default"
    generate_synthetic_dataset(default, **PARAMS)
    assert _files(default) == _files(made["rgb"])  # variant="rgb" is the default, marker too
    marker = json.loads((default / ".complete.json").read_text())
    assert "variant" not in marker["params"] and "looks" not in marker["params"]
    other = tmp_path / "seed8"
    generate_synthetic_dataset(other, **{**PARAMS, "seed": 8}, variant="sar")
    assert _files(other)["images/train/00000.tif"] != _files(made["sar"])[
        "images/train/00000.tif"]


def test_a_complete_variant_is_not_regenerated_and_another_variant_is(made, tmp_path):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, **PARAMS, variant="rgbn")
    stamp = (root / "images/train/00000.tif").stat().st_mtime_ns
    ensure_synthetic_dataset(root, **PARAMS, variant="rgbn")
    assert (root / "images/train/00000.tif").stat().st_mtime_ns == stamp
    assert not synthetic_dataset_is_complete(root, **PARAMS)  # an rgbn folder is not rgb
    ensure_synthetic_dataset(root, **PARAMS, variant="sar")
    assert synthetic_dataset_is_complete(root, **PARAMS, variant="sar")
    assert _files(root) == _files(made["sar"])  # the rgbn files were replaced, none is left


def test_cli_variant_and_default_folder(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(REPO / "tools" / "data"))
    import make_synthetic

    monkeypatch.chdir(tmp_path)
    args = ["--num-train", "1", "--num-val", "1", "--num-test", "0", "--img-size", "64"]
    assert make_synthetic.main([*args, "--variant", "sar", "--looks", "2"]) == 0
    marker = json.loads((tmp_path / "data/synthetic_sar/.complete.json").read_text())
    assert marker["params"]["variant"] == "sar" and marker["params"]["looks"] == 2.0
    assert (tmp_path / "data/synthetic_sar" / BAND_STATS_FILE).is_file()
    assert make_synthetic.main([*args, "--variant", "rgbn", "--looks", "2"]) == 2
    assert "--looks applies to --variant sar only" in capsys.readouterr().err
