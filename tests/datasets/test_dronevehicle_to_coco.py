"""DroneVehicle converter on small files written here in the official layout
(``<split>/<split>img``, ``imgr``, ``label``, ``labelr``; 840x712 images with a 100 px white
border): polygon and bndbox objects, the misspelled class names, the border crop, the label set
choice, and a corrupt XML with and without --skip-bad."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ds2d2_mm.cli.dronevehicle_to_coco import main
from ds2d2_mm.datasets.converters.dronevehicle import clip_polygon, parse_dronevehicle_xml
from ds2d2_mm.utils.errors import AnnotationError

REPO = Path(__file__).resolve().parents[2]
W, H, BORDER = 840, 712, 100


def polygon(name: str, *xy: float) -> str:
    tags = "".join(f"<{t}>{v:g}</{t}>" for t, v in zip(
        ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4"), xy, strict=True))
    return (f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
            f"\t\t<polygon>{tags}</polygon>\n\t</object>\n")


def bndbox(name: str, x1: float, y1: float, x2: float, y2: float) -> str:
    return (f"\t<object>\n\t\t<name>{name}</name>\n\t\t<bndbox><xmin>{x1:g}</xmin>"
            f"<ymin>{y1:g}</ymin><xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox>\n\t</object>\n")


def xml(stem: str, *objects: str) -> str:
    return (f"<annotation>\n\t<filename>{stem}.jpg</filename>\n\t<source>\n"
            f"\t\t<database>DroneVehicle</database>\n\t</source>\n\t<size>\n"
            f"\t\t<width>{W}</width>\n\t\t<height>{H}</height>\n\t\t<depth>3</depth>\n"
            f"\t</size>\n\t<segmented>0</segmented>\n{''.join(objects)}</annotation>\n")


def write_pair(root: Path, split: str, stem: str, ir_objects: list[str],
               rgb_objects: list[str] | None = None, seed: int = 0) -> None:
    """An RGB and an infrared image (white border, random scene) and both label files."""
    rng = np.random.default_rng(seed)
    scene = rng.integers(0, 200, (H - 2 * BORDER, W - 2 * BORDER, 3)).astype(np.uint8)
    rgb = np.full((H, W, 3), 255, np.uint8)
    rgb[BORDER:H - BORDER, BORDER:W - BORDER] = scene
    ir = np.repeat(rgb.mean(-1, keepdims=True).astype(np.uint8), 3, -1)  # 3 equal channels
    folders = {"img": rgb, "imgr": ir}
    for kind, img in folders.items():
        path = root / split / f"{split}{kind}" / f"{stem}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img)
    for kind, objects in (("labelr", ir_objects),
                          ("label", ir_objects if rgb_objects is None else rgb_objects)):
        path = root / split / f"{split}{kind}" / f"{stem}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(xml(stem, *objects))


#: Objects of the first infrared label file: (xml text, expected class, cropped polygon or None).
IR_OBJECTS = [
    (polygon("car", 200, 150, 260, 150, 260, 180, 200, 180), "car",
     [(100, 50), (160, 50), (160, 80), (100, 80)]),
    (polygon("feright car", 300, 300, 340, 310, 330, 350, 290, 340), "freight_car",
     [(200, 200), (240, 210), (230, 250), (190, 240)]),
    (polygon("feright_car", 400, 200, 450, 200, 450, 230, 400, 230), "freight_car",
     [(300, 100), (350, 100), (350, 130), (300, 130)]),
    (bndbox("truvk", 500, 400, 560, 440), "truck", [(400, 300), (460, 300), (460, 340),
                                                     (400, 340)]),
    (bndbox("Bus", 600, 250, 680, 290), "bus", [(500, 150), (580, 150), (580, 190),
                                                 (500, 190)]),
    # straddles the left border: clipped at x = 0 of the crop
    (polygon("van", 80, 400, 130, 400, 130, 430, 80, 430), "van",
     [(0, 300), (30, 300), (30, 330), (0, 330)]),
    # wholly inside the white border: dropped by the crop
    (bndbox("car", 10, 10, 60, 50), None, None),
]
JUNK = [polygon("*", 700, 300, 720, 300, 720, 320, 700, 320),
        "\t<object>\n\t\t<name>car</name>\n\t\t<point><x>5</x><y>5</y></point>\n\t</object>\n"]


@pytest.fixture
def dv_root(tmp_path: Path) -> Path:
    root = tmp_path / "DroneVehicle"
    write_pair(root, "train", "00001", [o[0] for o in IR_OBJECTS] + JUNK,
               rgb_objects=[IR_OBJECTS[0][0]])
    write_pair(root, "train", "00002", [polygon("car", 300, 300, 330, 300, 330, 320, 300, 320)],
               seed=1)
    write_pair(root, "val", "00001", [bndbox("van", 200, 200, 240, 230)], seed=2)
    return root


def run(*args: str) -> int:
    return main([*args, "--nproc", "1", "--no-progress"])


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_crop_misspellings_polygons_and_bndboxes(dv_root, tmp_path, capsys):
    out = tmp_path / "DV640"
    assert run("--root", str(dv_root), "--out", str(out), "--crop-border", "100",
               "--splits", "train", "val") == 0
    printed = capsys.readouterr().out
    coco = load(out / "annotations" / "train.json")
    assert [c["name"] for c in coco["categories"]] == ["car", "truck", "bus", "van",
                                                        "freight_car"]
    assert [(i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        ("00001.jpg", 640, 512), ("00002.jpg", 640, 512)]
    names = [c["name"] for c in coco["categories"]]
    first = [a for a in coco["annotations"] if a["image_id"] == 1]
    kept = [o for o in IR_OBJECTS if o[1] is not None]
    assert len(first) == len(kept)
    for ann, (_, name, poly) in zip(first, kept, strict=True):
        assert names[ann["category_id"] - 1] == name
        got = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        np.testing.assert_allclose(got, np.asarray(poly, float))
        xs, ys = got[:, 0], got[:, 1]
        assert ann["bbox"] == pytest.approx([xs.min(), ys.min(), np.ptp(xs), np.ptp(ys)])
    # the pairs are cropped to 640x512 and written under <split>/{rgb,ir}/
    for modality, channels in (("rgb", 3), ("ir", 3)):
        img = cv2.imread(str(out / "train" / modality / "00001.jpg"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (512, 640, channels)
        assert img.mean() < 150  # the white border is gone
    assert "objects_clipped: 1" in printed and "objects_outside_crop: 1" in printed
    assert "dropped_objects: 2" in printed and "object named '*'" in printed
    assert "has neither <polygon> nor <bndbox>" in printed
    assert "data_prefix=dict(rgb='train/rgb/', ir='train/ir/')" in printed
    assert load(out / "annotations" / "val.json")["annotations"][0]["bbox"] == [100, 100, 40, 30]


def test_rgb_label_set_and_no_crop_reads_the_official_folders(dv_root, tmp_path, capsys):
    out = tmp_path / "ann"
    assert run("--root", str(dv_root), "--out", str(out), "--labels", "rgb",
               "--splits", "train") == 0
    printed = capsys.readouterr().out
    coco = load(out / "annotations" / "train.json")
    first = [a for a in coco["annotations"] if a["image_id"] == 1]
    assert len(first) == 1 and first[0]["bbox"] == [200, 150, 60, 30]  # the RGB file's one car
    assert coco["images"][0]["width"] == W and coco["images"][0]["height"] == H
    assert not (out / "train").exists()  # no image written without a crop
    assert "data_prefix=dict(rgb='train/trainimg/', ir='train/trainimgr/')" in printed
    assert "labels: rgb" in printed


def test_corrupt_xml_stops_naming_the_file_or_is_skipped_and_listed(dv_root, tmp_path, capsys):
    bad = dv_root / "train" / "trainlabelr" / "00002.xml"
    bad.write_text("<annotation><object><name>car</name>")
    out = tmp_path / "out"
    assert run("--root", str(dv_root), "--out", str(out), "--splits", "train") == 1
    err = capsys.readouterr().err
    assert f"{bad}:1: not well-formed XML" in err and "--skip-bad" in err
    assert not (out / "annotations" / "train.json").exists()

    assert run("--root", str(dv_root), "--out", str(out), "--splits", "train",
               "--skip-bad") == 0
    printed = capsys.readouterr().out
    assert "skipped: 1" in printed and str(bad) in printed
    assert [i["file_name"] for i in load(out / "annotations" / "train.json")["images"]] == [
        "00001.jpg"]


def test_corrupt_image_and_unknown_class_name_the_file(dv_root, tmp_path, capsys):
    image = dv_root / "train" / "trainimgr" / "00002.jpg"
    image.write_bytes(b"\xff\xd8 truncated")
    assert run("--root", str(dv_root), "--out", str(tmp_path / "o"), "--splits", "train") == 1
    assert f"{image}: cannot decode image" in capsys.readouterr().err
    label = dv_root / "val" / "vallabelr" / "00001.xml"
    label.write_text(xml("00001", bndbox("tank", 200, 200, 240, 230)))
    with pytest.raises(AnnotationError, match=r"00001\.xml:\d+: unknown class 'tank'"):
        parse_dronevehicle_xml(label)


def test_clip_polygon_cuts_at_the_crop_edges():
    assert clip_polygon([(-10, 0), (10, 0), (10, 10), (-10, 10)], 100, 100) == [
        (0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
    assert clip_polygon([(-30, -30), (-10, -30), (-10, -10)], 100, 100) == []
    rotated = clip_polygon([(50, -10), (60, 0), (50, 10), (40, 0)], 100, 100)
    assert min(y for _, y in rotated) == 0 and len(rotated) == 5


def test_converted_pairs_load_through_the_paired_dataset(dv_root, tmp_path):
    from mmdet.registry import DATASETS

    out = tmp_path / "DV640"
    assert run("--root", str(dv_root), "--out", str(out), "--crop-border", "100",
               "--splits", "train") == 0
    ds = DATASETS.build(dict(
        type="DroneVehicleDataset", data_root=str(out), ann_file="annotations/train.json",
        data_prefix=dict(rgb="train/rgb/", ir="train/ir/"),
        pipeline=[dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=1)),
                  dict(type="LoadAnnotations", with_bbox=True)]))
    sample = ds[0]
    assert sample["img"].shape == (512, 640, 4)
    assert len(sample["gt_bboxes"]) == len([o for o in IR_OBJECTS if o[1] is not None])


def test_thin_wrapper_runs_from_a_checkout(dv_root, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tools/data/dronevehicle_to_coco.py"),
                           "--root", str(dv_root), "--out", str(tmp_path / "w"), "--splits",
                           "val", "--no-progress", "--nproc", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w" / "annotations" / "val.json").is_file()
