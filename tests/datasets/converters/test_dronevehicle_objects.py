"""DroneVehicle: bad objects cost the object, never the pair (listed and in the report),
``--strict``, and a split with no pair is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_dronevehicle_to_coco import W, bndbox, polygon, write_pair

from ds2d2_mm.cli.dronevehicle_to_coco import main
from ds2d2_mm.datasets.converters.common import REPORT_NAME
from ds2d2_mm.datasets.converters.dronevehicle import convert_dronevehicle
from ds2d2_mm.utils.errors import AnnotationError, DatasetLayoutError

OBJECTS = [
    bndbox("car", 300, 300, 300, 330),  # 1: xmin = xmax
    polygon("van", 820, 100, 850, 100, 850, 130, 820, 130),  # 2: crosses x = 840
    polygon("bus", 900, 100, 950, 100, 950, 130, 900, 130),  # 3: outside the 840 px image
    bndbox("truck", 400, 400, 450, 430),  # 4: fine
]


def object_lines(xml: Path) -> list[int]:
    return [i + 1 for i, s in enumerate(xml.read_text().splitlines()) if s == "\t<object>"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "DV"
    write_pair(root, "train", "00007", OBJECTS)
    return root


def test_bad_objects_are_dropped_or_clipped_and_listed(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = convert_dronevehicle(root, out, ["train"], progress=False)
    coco = json.loads((out / "annotations" / "train.json").read_text())
    assert len(coco["images"]) == 1
    assert [a["bbox"] for a in coco["annotations"]] == [[820, 100, 20, 30], [400, 400, 50, 30]]
    xml = root / "train" / "trainlabelr" / "00007.xml"
    lines = object_lines(xml)
    assert summary["repaired_objects"] == [
        f"{xml}:{lines[0]}: object 1: polygon [(300, 300), (300, 300), (300, 330), (300, 330)] "
        "has no area: dropped",
        f"{xml}:{lines[1]}: object 2: polygon [(820, 100), (850, 100), (850, 130), (820, 130)] "
        f"crosses the edge of the {W}x712 image: clipped to (820, 100, 840, 100, 840, 130, "
        "820, 130)",
        f"{xml}:{lines[2]}: object 3: polygon [(900, 100), (950, 100), (950, 130), (900, 130)] "
        f"lies outside the {W}x712 image: dropped",
    ]
    assert summary["objects_clipped"] == 1 and summary["objects_dropped"] == 2
    assert summary["objects_outside_crop"] == 0
    report = json.loads((out / "annotations" / REPORT_NAME).read_text())
    assert [(e["object"], e["action"]) for e in report["objects"]] == [
        (1, "dropped"), (2, "clipped"), (3, "dropped")]


def test_strict_stops_at_the_first_bad_object(root: Path, tmp_path: Path, capsys) -> None:
    xml = root / "train" / "trainlabelr" / "00007.xml"
    with pytest.raises(AnnotationError) as info:
        convert_dronevehicle(root, tmp_path / "a", ["train"], progress=False, strict=True)
    assert info.value.path == str(xml) and info.value.line == object_lines(xml)[0]
    assert main(["--root", str(root), "--out", str(tmp_path / "b"), "--splits", "train",
                 "--strict", "--nproc", "1", "--no-progress"]) == 1
    assert "object 1: polygon" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_split_without_pairs_is_an_error(root: Path, tmp_path: Path, capsys) -> None:
    (root / "train" / "trainimgr" / "00007.jpg").write_bytes(b"broken")
    with pytest.raises(DatasetLayoutError, match="train.json: no image to write: all 1 pairs"):
        convert_dronevehicle(root, tmp_path / "a", ["train"], progress=False, skip_bad=True)
    assert main(["--root", str(root), "--out", str(tmp_path / "b"), "--splits", "train",
                 "--skip-bad", "--nproc", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no image to write" in err and "--skip-bad" not in err
    assert not (tmp_path / "b").exists()
