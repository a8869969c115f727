"""DIOR -> COCO conversion on a tiny fixture in the official layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dataset_fixtures import HBB_DIR, voc_xml, write_image

from ds2d2_mm.datasets import (
    DIOR_CLASSES,
    AnnotationError,
    DatasetError,
    ImageError,
    convert_dior,
    parse_dior_xml,
)
from ds2d2_mm.datasets.converters.common import clip_box
from ds2d2_mm.utils.errors import DatasetLayoutError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "data"))

import dior_to_coco  # noqa: E402

EXPECTED_TRAINVAL = {
    "images": [
        {"id": 1, "file_name": "JPEGImages-trainval/00001.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "JPEGImages-trainval/00002.jpg", "width": 40, "height": 30},
    ],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 6, 15, 24], "area": 360,
         "iscrowd": 0, "difficult": 1},
        {"id": 2, "image_id": 1, "category_id": 19, "bbox": [30, 10, 4, 8], "area": 32,
         "iscrowd": 0, "difficult": 0},
        {"id": 3, "image_id": 1, "category_id": 8, "bbox": [0, 0, 64, 48], "area": 3072,
         "iscrowd": 0, "difficult": 0},
        # 00002: box (10, 10, 45, 28) clipped to the real 40x30 image
        {"id": 4, "image_id": 2, "category_id": 16, "bbox": [10, 10, 30, 18], "area": 540,
         "iscrowd": 0, "difficult": 0},
    ],
}
EXPECTED_TEST = {
    "images": [{"id": 1, "file_name": "JPEGImages-test/00003.jpg", "width": 32, "height": 32}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 14, "bbox": [1, 2, 10, 20],
                     "area": 200, "iscrowd": 0, "difficult": 0}],
}
EXPECTED_CATEGORIES = [{"id": i + 1, "name": n, "supercategory": "none"}
                       for i, n in enumerate(DIOR_CLASSES)]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_dior_classes_standard_order() -> None:
    assert len(DIOR_CLASSES) == 20
    assert DIOR_CLASSES[0] == "airplane" and DIOR_CLASSES[-1] == "windmill"
    assert DIOR_CLASSES[7:9] == ("expressway-service-area", "expressway-toll-station")
    assert DIOR_CLASSES.index("vehicle") == 18


def test_convert_exact_json(dior_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ann"
    summary = convert_dior(dior_root, out, ["trainval", "test", "train", "val"], progress=False)
    trainval, test = _load(out / "trainval.json"), _load(out / "test.json")
    assert trainval == {**EXPECTED_TRAINVAL, "categories": EXPECTED_CATEGORIES}
    assert test == {**EXPECTED_TEST, "categories": EXPECTED_CATEGORIES}
    train, val = _load(out / "train.json"), _load(out / "val.json")
    assert [im["file_name"] for im in train["images"]] == ["JPEGImages-trainval/00001.jpg"]
    assert [im["file_name"] for im in val["images"]] == ["JPEGImages-trainval/00002.jpg"]
    assert len(train["annotations"]) == 3 and len(val["annotations"]) == 1
    assert val["annotations"][0]["image_id"] == 1
    assert summary["splits"]["trainval"] == {"images": 2, "objects": 4,
                                             "json": str(out / "trainval.json")}
    assert summary["splits"]["test"]["objects"] == 1
    assert len(summary["size_mismatches"]) == 1 and "00002" in summary["size_mismatches"][0]
    assert summary["boxes_clipped"] == 1
    assert summary["skipped"] == []


def test_default_splits_only_trainval_and_test(dior_root: Path, tmp_path: Path) -> None:
    convert_dior(dior_root, tmp_path / "ann", progress=False)
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == [
        "conversion_report.json", "test.json", "trainval.json"]


def test_xml_without_size_errors_and_skip_bad(dior_root: Path, tmp_path: Path) -> None:
    bad = dior_root / HBB_DIR / "00002.xml"
    bad.write_text(voc_xml([("ship", (1, 1, 5, 5), 0)], size=None))
    with pytest.raises(AnnotationError) as info:
        convert_dior(dior_root, tmp_path / "a", ["trainval"], progress=False)
    assert info.value.path == str(bad) and "00002.xml" in str(info.value)
    assert "<size>" in str(info.value)
    summary = convert_dior(dior_root, tmp_path / "b", ["trainval"], skip_bad=True,
                           progress=False)
    assert len(summary["skipped"]) == 1 and "00002.xml" in summary["skipped"][0]
    assert summary["splits"]["trainval"]["images"] == 1
    files = [im["file_name"] for im in _load(tmp_path / "b" / "trainval.json")["images"]]
    assert files == ["JPEGImages-trainval/00001.jpg"]
    # val holds 00002 alone: a json without images is an error, and nothing is written
    with pytest.raises(DatasetLayoutError, match=r"val\.json: no image to write: all 1 images "
                       r"of split 'val' were skipped \(first: .*00002\.xml"):
        convert_dior(dior_root, tmp_path / "c", ["trainval", "val"], skip_bad=True,
                     progress=False)
    assert not (tmp_path / "c").exists()


def test_unknown_class_names_file_line_and_class(dior_root: Path, tmp_path: Path) -> None:
    bad = dior_root / HBB_DIR / "00003.xml"
    bad.write_text(voc_xml([("ship", (1, 1, 5, 5), 0), ("helicopter", (2, 2, 9, 9), 0)],
                           (32, 32)))
    with pytest.raises(AnnotationError) as info:
        convert_dior(dior_root, tmp_path / "a", ["test"], progress=False)
    err = info.value
    name_line = 1 + bad.read_text().splitlines().index("    <name>helicopter</name>")
    assert err.path == str(bad) and err.line == name_line
    assert f"00003.xml:{name_line}" in str(err) and "'helicopter'" in str(err)


def test_missing_and_broken_images(dior_root: Path, tmp_path: Path) -> None:
    image = dior_root / "JPEGImages-test" / "00003.jpg"
    image.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="00003.jpg.*cannot decode"):
        convert_dior(dior_root, tmp_path / "a", ["test"], progress=False)
    image.unlink()
    with pytest.raises(ImageError, match="00003.jpg.*not found"):
        convert_dior(dior_root, tmp_path / "a", ["test"], progress=False)
    with pytest.raises(DatasetLayoutError, match=r"test\.json: no image to write.*00003\.jpg"):
        convert_dior(dior_root, tmp_path / "a", ["test"], skip_bad=True, progress=False)
    assert not (tmp_path / "a").exists()


def test_missing_image_list_is_an_error(dior_root: Path, tmp_path: Path) -> None:
    (dior_root / "ImageSets" / "Main" / "val.txt").unlink()
    with pytest.raises(DatasetError, match="val.txt"):
        convert_dior(dior_root, tmp_path / "a", ["trainval"], skip_bad=True, progress=False)


def test_parse_xml_errors_carry_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_text("<annotation>\n  <size><width>10</width>\n</annotation>\n")
    with pytest.raises(AnnotationError) as info:
        parse_dior_xml(path)
    assert info.value.line == 3 and "well-formed" in str(info.value)
    path.write_text(voc_xml([("ship", (5, 5, 5, 9), 0)], (10, 10)))
    # boxes come as written: the converter's per-object rule judges them against the image
    assert parse_dior_xml(path).objects[0].box == (5, 5, 5, 9)
    assert clip_box((5, 5, 5, 9), 10, 10) == (None, "box (5, 5, 5, 9) has zero width "
                                               "(xmin = xmax)")
    path.write_text(voc_xml([("ship", (1, 2, 3, 4), None)], (10, 10)))
    ann = parse_dior_xml(path)
    assert (ann.width, ann.height) == (10, 10)
    assert [(o.label, o.box, o.difficult) for o in ann.objects] == [(13, (1, 2, 3, 4), 0)]


def test_cli(dior_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    args = ["--root", str(dior_root), "--out", str(out), "--no-progress"]
    assert dior_to_coco.main([*args, "--splits", "trainval", "test", "val"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["conversion_report.json", "test.json",
                                                     "trainval.json", "val.json"]
    assert "size_mismatches" in capsys.readouterr().out
    (dior_root / HBB_DIR / "00001.xml").write_text(voc_xml([("tank", (1, 1, 4, 4), 0)],
                                                           (64, 48)))
    assert dior_to_coco.main(args) == 1
    assert "00001.xml" in capsys.readouterr().err
    assert dior_to_coco.main([*args, "--skip-bad"]) == 0


def test_truncated_jpeg_is_caught_by_the_converter(dior_root: Path, tmp_path: Path) -> None:
    """Only a full decode sees a JPEG cut to a third: its header (and size) are intact."""
    from PIL import Image

    image = dior_root / "JPEGImages-test" / "00003.jpg"
    write_image(image, 800, 800, seed=7)  # DIOR's size: a header far shorter than a third
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 3])
    with Image.open(image) as header_only:
        assert header_only.size  # the header alone looks fine
    with pytest.raises(ImageError, match=r"00003\.jpg.*cannot decode.*truncated"):
        convert_dior(dior_root, tmp_path / "a", ["test"], progress=False)
    with pytest.raises(DatasetLayoutError, match=r"no image to write.*truncated"):
        convert_dior(dior_root, tmp_path / "a", ["test"], skip_bad=True, progress=False)


def test_parallel_conversion_equals_the_serial_one(dior_root: Path, tmp_path: Path) -> None:
    serial = convert_dior(dior_root, tmp_path / "one", progress=False)
    parallel = convert_dior(dior_root, tmp_path / "two", progress=False, nproc=2)
    for split in ("trainval", "test"):
        assert ((tmp_path / "one" / f"{split}.json").read_text()
                == (tmp_path / "two" / f"{split}.json").read_text())
    for key in ("size_mismatches", "boxes_clipped", "skipped"):
        assert serial[key] == parallel[key], key
