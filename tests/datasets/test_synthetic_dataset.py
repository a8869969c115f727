"""The built-in synthetic aerial dataset: determinism, annotation sanity, caching."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ds2d2_mm.datasets import SYNTHETIC_CLASSES
from ds2d2_mm.tooling.synthetic import (
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    synthetic_dataset_is_complete,
)
from ds2d2_mm.tooling.synthetic import generate as synthetic_module

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "data"))

import make_synthetic  # noqa: E402

SMALL = dict(num_train=12, num_val=4, img_size=128)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate_synthetic_dataset(root, seed=3, **SMALL)


def test_classes() -> None:
    assert SYNTHETIC_CLASSES == ("airplane", "ship", "storagetank", "vehicle")


def test_layout_and_summary(small_dataset: tuple[Path, dict]) -> None:
    root, summary = small_dataset
    for split, count in (("train", 12), ("val", 4)):
        names = [f"{i:05d}" for i in range(count)]
        assert sorted(p.stem for p in (root / "images" / split).glob("*.png")) == names
        assert sorted(p.stem for p in (root / "labelTxt" / split).glob("*.txt")) == names
        coco = json.loads((root / "annotations" / f"{split}.json").read_text())
        assert [im["file_name"] for im in coco["images"]] == [
            f"images/{split}/{n}.png" for n in names]
        assert summary["splits"][split]["images"] == count
        assert summary["splits"][split]["objects"] == len(coco["annotations"])
    image = cv2.imread(str(root / "images" / "train" / "00000.png"))
    assert image.shape == (128, 128, 3) and image.std() > 10


def test_same_seed_same_bytes_other_seed_differs(small_dataset: tuple[Path, dict],
                                                 tmp_path: Path) -> None:
    root, _ = small_dataset
    generate_synthetic_dataset(tmp_path / "same", seed=3, **SMALL)
    assert _files(tmp_path / "same") == _files(root)
    generate_synthetic_dataset(tmp_path / "other", seed=4, **SMALL)
    other = _files(tmp_path / "other")
    assert other.keys() == _files(root).keys()
    assert other["images/train/00000.png"] != _files(root)["images/train/00000.png"]
    assert other["annotations/train.json"] != _files(root)["annotations/train.json"]


def test_boxes_inside_non_degenerate_and_classes_present(tmp_path: Path) -> None:
    summary = generate_synthetic_dataset(tmp_path, num_train=16, num_val=2, img_size=192)
    coco = json.loads((tmp_path / "annotations" / "train.json").read_text())
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4]
    assert [c["name"] for c in coco["categories"]] == list(SYNTHETIC_CLASSES)
    assert len(coco["annotations"]) >= 16 * 5
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 192 and y + h <= 192, ann
        assert w >= 2 and h >= 2 and ann["area"] == pytest.approx(w * h, abs=0.01)
        assert ann["iscrowd"] == 0
    counts = summary["splits"]["train"]["class_counts"]
    assert set(counts) == set(SYNTHETIC_CLASSES) and min(counts.values()) > 0, counts
    sizes = [max(a["bbox"][2:]) for a in coco["annotations"]]
    assert min(sizes) < 12 and max(sizes) > 28  # a real spread of object scales


def test_objects_do_not_overlap_much(small_dataset: tuple[Path, dict]) -> None:
    root, _ = small_dataset
    coco = json.loads((root / "annotations" / "train.json").read_text())
    for image in coco["images"]:
        boxes = np.array([a["bbox"] for a in coco["annotations"]
                          if a["image_id"] == image["id"]])
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        lo = np.maximum(xyxy[:, None, :2], xyxy[None, :, :2])
        hi = np.minimum(xyxy[:, None, 2:], xyxy[None, :, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
        area = np.prod(boxes[:, 2:], axis=1)
        iou = inter / (area[:, None] + area[None] - inter)
        np.fill_diagonal(iou, 0)
        assert iou.max() < 0.3


def test_oriented_labels_match_coco(small_dataset: tuple[Path, dict]) -> None:
    root, _ = small_dataset
    coco = json.loads((root / "annotations" / "val.json").read_text())
    for image in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        stem = Path(image["file_name"]).stem
        lines = (root / "labelTxt" / "val" / f"{stem}.txt").read_text().splitlines()
        assert len(lines) == len(anns)
        for line, ann in zip(lines, anns):
            fields = line.split()
            assert len(fields) == 10 and fields[9] == "0"
            assert SYNTHETIC_CLASSES.index(fields[8]) == ann["category_id"] - 1
            corners = np.array(fields[:8], dtype=float).reshape(4, 2)
            x, y, w, h = ann["bbox"]
            # the tight box of the silhouette lies within the oriented box's bounds
            assert corners[:, 0].min() <= x + 0.02 and x + w <= corners[:, 0].max() + 0.02
            assert corners[:, 1].min() <= y + 0.02 and y + h <= corners[:, 1].max() + 0.02


def test_ensure_skips_when_complete_and_redoes_otherwise(tmp_path: Path) -> None:
    params = dict(num_train=3, num_val=1, img_size=96, seed=1)
    assert not synthetic_dataset_is_complete(tmp_path, **params)
    assert ensure_synthetic_dataset(tmp_path, **params) == tmp_path
    assert synthetic_dataset_is_complete(tmp_path, **params)
    stamps = _mtimes(tmp_path)
    ensure_synthetic_dataset(tmp_path, **params)
    assert _mtimes(tmp_path) == stamps
    ensure_synthetic_dataset(tmp_path, **{**params, "num_train": 2})  # other parameters
    assert _mtimes(tmp_path) != stamps
    assert sorted(p.name for p in (tmp_path / "images" / "train").iterdir()) == [
        "00000.png", "00001.png"]  # no stale files from the larger run
    assert sorted(p.name for p in (tmp_path / "labelTxt" / "train").iterdir()) == [
        "00000.txt", "00001.txt"]


def test_interrupted_generation_is_redone(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    params = dict(num_train=4, num_val=1, img_size=96, seed=2)
    real = synthetic_module.render_scene
    calls = []

    def flaky(rng: np.random.Generator, size: int):
        calls.append(size)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(rng, size)

    monkeypatch.setattr(synthetic_module, "render_scene", flaky)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_dataset(tmp_path, **params)
    assert not synthetic_dataset_is_complete(tmp_path, **params)
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written files
    monkeypatch.setattr(synthetic_module, "render_scene", real)
    ensure_synthetic_dataset(tmp_path, **params)
    assert synthetic_dataset_is_complete(tmp_path, **params)
    reference = tmp_path.parent / "reference"
    generate_synthetic_dataset(reference, **params)
    assert _files(tmp_path) == _files(reference)
    # an interrupted regeneration with other parameters invalidates the complete dataset
    calls.clear()
    monkeypatch.setattr(synthetic_module, "render_scene", flaky)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_dataset(tmp_path, **{**params, "seed": 5})
    assert not synthetic_dataset_is_complete(tmp_path, **params)


def test_invalid_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_train"):
        generate_synthetic_dataset(tmp_path, num_train=-1)
    with pytest.raises(ValueError, match="img_size"):
        generate_synthetic_dataset(tmp_path, img_size=16)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--out", str(tmp_path), "--num-train", "2", "--num-val", "1", "--img-size", "96"]
    assert make_synthetic.main(args) == 0
    assert "class_counts" in capsys.readouterr().out
    assert make_synthetic.main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert make_synthetic.main([*args, "--force"]) == 0
    assert "class_counts" in capsys.readouterr().out
