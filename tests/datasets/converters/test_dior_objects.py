"""DIOR: bad boxes cost the object, never the image (the release's cases, on a tiny copy of its
layout), ``--strict``, and the converter's messages on a wrong layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dataset_fixtures import HBB_DIR, voc_xml, write_image

from ds2d2_mm.datasets import DIOR_CLASSES, AnnotationError, convert_dior
from ds2d2_mm.datasets.converters.common import REPORT_NAME
from ds2d2_mm.utils.errors import DatasetLayoutError

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools" / "data"))

import dior_to_coco  # noqa: E402

W, H = 800, 64  # DIOR's 800 px width; a low height keeps the fixture fast
#: The release's cases: 04137 a ship with xmin = xmax = 162, 15504 a zero-size box, 05195 a box
#: with x2 = 802 on the 800 px image, 00777 one box outside the image among valid ones.
RELEASE = {
    "04137": [("ship", (10, 5, 40, 30), 0), ("ship", (162, 10, 162, 40), 0),
              ("harbor", (100, 2, 300, 60), 0)],
    "15504": [("vehicle", (500, 20, 500, 20), 0), ("vehicle", (510, 20, 530, 35), 1)],
    "05195": [("bridge", (700, 10, 802, 50), 0)],
    "00777": [("airplane", (1, 1, 20, 20), 0), ("airplane", (850, 10, 900, 30), 0),
              ("windmill", (600, 0, 640, 64), 0)],
}


def object_lines(xml: Path) -> list[int]:
    """1-based line of every ``<object>`` of ``xml``."""
    return [i + 1 for i, s in enumerate(xml.read_text().splitlines()) if s == "  <object>"]


@pytest.fixture
def release(tmp_path: Path) -> Path:
    root = tmp_path / "DIOR"
    for seed, (image_id, objects) in enumerate(RELEASE.items()):
        write_image(root / "JPEGImages-trainval" / f"{image_id}.jpg", W, H, seed=seed)
        (root / HBB_DIR).mkdir(parents=True, exist_ok=True)
        (root / HBB_DIR / f"{image_id}.xml").write_text(voc_xml(objects, (W, H)))
    write_image(root / "JPEGImages-test" / "00001.jpg", W, H, seed=9)
    (root / HBB_DIR / "00001.xml").write_text(voc_xml([("dam", (5, 5, 50, 50), 0)], (W, H)))
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("04137\n15504\n")
    (main / "val.txt").write_text("05195\n00777\n")
    (main / "test.txt").write_text("00001\n")
    return root


def test_bad_boxes_cost_the_object_not_the_image(release: Path, tmp_path: Path) -> None:
    out = tmp_path / "ann"
    summary = convert_dior(release, out, progress=False)
    coco = json.loads((out / "trainval.json").read_text())
    files = [im["file_name"] for im in coco["images"]]
    assert files == [f"JPEGImages-trainval/{i}.jpg" for i in ("04137", "15504", "05195", "00777")]
    per_image = {im["file_name"][-9:-4]: [a for a in coco["annotations"]
                                         if a["image_id"] == im["id"]] for im in coco["images"]}
    cls = {name: DIOR_CLASSES.index(name) + 1 for name in ("ship", "harbor", "vehicle",
                                                           "bridge", "airplane", "windmill")}
    assert [(a["category_id"], a["bbox"]) for a in per_image["04137"]] == [
        (cls["ship"], [10, 5, 30, 25]), (cls["harbor"], [100, 2, 200, 58])]
    assert [(a["bbox"], a["difficult"]) for a in per_image["15504"]] == [([510, 20, 20, 15], 1)]
    assert [a["bbox"] for a in per_image["05195"]] == [[700, 10, 100, 40]]  # x2 = 802 -> 800
    assert [(a["category_id"], a["bbox"]) for a in per_image["00777"]] == [
        (cls["airplane"], [1, 1, 19, 19]), (cls["windmill"], [600, 0, 40, 64])]
    assert summary["splits"]["trainval"] == {"images": 4, "objects": 6,
                                             "json": str(out / "trainval.json")}
    assert summary["boxes_clipped"] == 1 and summary["objects_dropped"] == 3
    assert summary["skipped"] == []
    xml = {i: release / HBB_DIR / f"{i}.xml" for i in RELEASE}
    lines = {i: object_lines(p) for i, p in xml.items()}
    assert sorted(summary["repaired_objects"]) == sorted([
        f"{xml['04137']}:{lines['04137'][1]}: object 2: box (162, 10, 162, 40) has zero width "
        "(xmin = xmax): dropped",
        f"{xml['15504']}:{lines['15504'][0]}: object 1: box (500, 20, 500, 20) has zero size: "
        "dropped",
        f"{xml['05195']}:{lines['05195'][0]}: object 1: box (700, 10, 802, 50) crosses the edge "
        "of the 800x64 image: clipped to (700, 10, 800, 50)",
        f"{xml['00777']}:{lines['00777'][1]}: object 2: box (850, 10, 900, 30) lies outside the "
        "800x64 image: dropped",
    ])
    report = json.loads((out / REPORT_NAME).read_text())
    assert summary["report"] == str(out / REPORT_NAME)
    by_file = {Path(e["file"]).stem: e for e in report["objects"]}
    assert by_file["05195"] == {"file": str(xml["05195"]), "line": lines["05195"][0],
                                "object": 1, "problem": "box (700, 10, 802, 50) crosses the "
                                "edge of the 800x64 image", "action": "clipped",
                                "to": [700, 10, 800, 50]}
    assert [by_file[i]["action"] for i in ("04137", "15504", "00777")] == ["dropped"] * 3
    assert report["splits"] == summary["splits"] and report["skipped"] == []


def test_strict_stops_at_the_first_bad_object(release: Path, tmp_path: Path) -> None:
    xml = release / HBB_DIR / "04137.xml"
    with pytest.raises(AnnotationError) as info:
        convert_dior(release, tmp_path / "a", ["train"], progress=False, strict=True)
    assert info.value.path == str(xml) and info.value.line == object_lines(xml)[1]
    assert "object 2: box (162, 10, 162, 40) has zero width" in str(info.value)
    assert not (tmp_path / "a").exists()
    # --strict --skip-bad: the images with a bad object are skipped whole (the old behaviour);
    # the clipped box of 05195 is still only clipped
    summary = convert_dior(release, tmp_path / "b", progress=False, strict=True, skip_bad=True)
    assert summary["splits"]["trainval"]["images"] == 1
    assert sorted(Path(s.split(":")[0]).stem for s in summary["skipped"]) == [
        "00777", "04137", "15504"]
    assert summary["boxes_clipped"] == 1 and summary["objects_dropped"] == 0


def test_cli_converts_the_release_and_lists_what_it_repaired(
        release: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    assert dior_to_coco.main(["--root", str(release), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "boxes_clipped: 1" in text and "objects_dropped: 3" in text
    assert "repaired_objects: 4" in text
    assert "04137.xml" in text and "has zero width (xmin = xmax): dropped" in text
    assert f"report: {out / REPORT_NAME}" in text
    args = ["--root", str(release), "--out", str(tmp_path / "strict"), "--no-progress"]
    assert dior_to_coco.main([*args, "--strict"]) == 1
    err = capsys.readouterr().err
    assert "04137.xml" in err and "has zero width" in err and "--skip-bad" in err


def test_only_the_oriented_annotations_is_named(release: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    ann = release / "Annotations"
    (ann / "Horizontal Bounding Boxes").rename(ann / "Oriented Bounding Boxes")
    with pytest.raises(DatasetLayoutError) as info:
        convert_dior(release, tmp_path / "a", progress=False, skip_bad=True)
    text = str(info.value)
    assert f"looked for {ann / 'Horizontal Bounding Boxes'}/" in text
    assert f"{ann} holds Oriented Bounding Boxes/" in text and "oriented-box annotation" in text
    out = tmp_path / "cli"
    assert dior_to_coco.main(["--root", str(release), "--out", str(out), "--no-progress",
                              "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert "Horizontal Bounding Boxes" in err and "Oriented Bounding Boxes/" in err
    assert "--skip-bad" not in err and not out.exists()


def test_a_wrong_root_names_what_it_holds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wrong = tmp_path / "photos"
    (wrong / "ImageSets" / "Main").mkdir(parents=True)
    for part in ("train", "val", "test"):
        (wrong / "ImageSets" / "Main" / f"{part}.txt").write_text("00001\n")
    (wrong / "holiday").mkdir()
    assert dior_to_coco.main(["--root", str(wrong), "--out", str(tmp_path / "o"),
                              "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"looked for {wrong / 'Annotations' / 'Horizontal Bounding Boxes'}/" in err
    assert f"{wrong / 'Annotations'} does not exist; {wrong} holds ImageSets/, holiday/" in err
    assert "--skip-bad" not in err


def test_missing_split_list_never_suggests_skip_bad(release: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    (release / "ImageSets" / "Main" / "val.txt").unlink()
    for extra in ([], ["--skip-bad"]):
        assert dior_to_coco.main(["--root", str(release), "--out", str(tmp_path / "o"),
                                  "--no-progress", *extra]) == 1
        err = capsys.readouterr().err
        assert "val.txt: image list of split 'val' not found" in err
        assert "holds test.txt, train.txt" in err and "--skip-bad" not in err
    assert not (tmp_path / "o").exists()


def test_an_output_without_images_is_an_error(release: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    (release / "JPEGImages-test" / "00001.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "o"
    assert dior_to_coco.main(["--root", str(release), "--out", str(out), "--no-progress",
                              "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert "test.json: no image to write: all 1 images of split 'test' were skipped" in err
    assert "00001.jpg" in err and "--skip-bad" not in err
    assert not out.exists()  # not even trainval.json


def test_class_order_differs_from_mmrotate_in_three_classes() -> None:
    """What the DIOR dataset's docstring says: the paper's order, three classes moved in
    MMRotate's ``DIORDataset``."""
    pytest.importorskip("mmrotate")
    from mmrotate.datasets import DIORDataset as MMRotateDIOR

    from ds2d2_mm.datasets.classes import DIOR_MMROTATE_ORDER
    from ds2d2_mm.datasets.coco_datasets import DIORDataset

    theirs = tuple(MMRotateDIOR.METAINFO["classes"])
    assert sorted(theirs) == sorted(DIOR_CLASSES) and theirs == DIOR_MMROTATE_ORDER
    moved = [c for i, c in enumerate(DIOR_CLASSES) if theirs[i] != c]
    assert moved == ["dam", "expressway-service-area", "expressway-toll-station"]
    for name in moved:
        assert name in DIORDataset.__doc__
