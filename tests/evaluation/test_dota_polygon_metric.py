"""Whole-image DOTA scoring against the ground-truth polygon (as the DOTA devkit's ``voc_eval``),
multi-scale patch names (the devkit's ``<name>__<rate>__<x>___<y>``), and Task1 files without
empty ones."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmrotate")
shapely = pytest.importorskip("shapely")

from dota_testlib import CLASSES, metric, sample, write_labels  # noqa: E402

from ds2d2_mm.evaluation import (  # noqa: E402
    PatchDetections,
    PatchName,
    merge_patch_detections,
    parse_patch_name,
    rbox_corners,
    write_task1_submission,
)

#: An isosceles trapezoid: its fitted rotated rectangle is the 40 x 20 box around it.
TRAPEZOID = (0, 0, 40, 0, 34, 20, 6, 20)
#: A detection at polygon IoU 0.486 with the trapezoid, 0.518 with its rectangle.
NEAR_MISS = [28.7, 8.2, 24.9, 23.2, 0.0]
#: A detection well on the trapezoid (polygon IoU above 0.5).
HIT = [20.0, 10.0, 34.0, 20.0, 0.0]


def iou(a: shapely.Polygon, b: shapely.Polygon) -> float:
    return a.intersection(b).area / a.union(b).area


def polygon(coords) -> shapely.Polygon:
    return shapely.Polygon(np.reshape(np.asarray(coords, dtype=np.float64), (-1, 2)))


def score(ann: Path, boxes, img_id: str = "P1__100__0___0") -> float:
    m = metric(ann_dir=str(ann))
    m.process({}, [sample(img_id, boxes, [0.9] * len(boxes), [0] * len(boxes))])
    return m.compute_metrics(m.results)["AP50"]


def test_the_premise_polygon_and_rectangle_iou_differ() -> None:
    """Recomputed here: the near miss is below 0.5 against the polygon, above against its
    rectangle (mmrotate's qbox2rbox, what the metric used to score against)."""
    from mmrotate.structures.bbox import qbox2rbox

    rect = qbox2rbox(torch.tensor([TRAPEZOID], dtype=torch.float32)).numpy()
    gt, gt_rect = polygon(TRAPEZOID), polygon(rbox_corners(rect)[0])
    near = polygon(rbox_corners(np.array([NEAR_MISS]))[0])
    assert iou(near, gt) == pytest.approx(0.486, abs=1e-3)
    assert iou(near, gt_rect) == pytest.approx(0.518, abs=1e-3)
    assert iou(polygon(rbox_corners(np.array([HIT]))[0]), gt) > 0.55


@pytest.mark.parametrize("order", ["clockwise", "counter-clockwise"])
def test_detections_are_scored_against_the_polygon(tmp_path: Path, order: str) -> None:
    corners = np.reshape(TRAPEZOID, (4, 2))
    if order == "counter-clockwise":
        corners = corners[::-1]
    ann = tmp_path / "labelTxt"
    write_labels(ann, "P1", [(corners.ravel(), "plane", 0)])
    assert score(ann, [NEAR_MISS]) == 0.0  # polygon IoU 0.486 < 0.5: a false positive
    assert score(ann, [HIT]) == 1.0


def test_difficult_polygons_are_ignored_not_missed(tmp_path: Path) -> None:
    ann = tmp_path / "labelTxt"
    far = (60, 60, 90, 60, 90, 80, 60, 80)
    write_labels(ann, "P1", [(TRAPEZOID, "plane", 0), (far, "plane", 1)])
    # one hit on the plain plane, one on the difficult one: neither a miss nor a false positive
    assert score(ann, [HIT, [75, 70, 30, 20, 0.0]]) == 1.0


def test_multi_scale_patch_names() -> None:
    assert parse_patch_name("P0706__0.5__0___512") == PatchName("P0706", 0, 512, 0.5)
    assert parse_patch_name("P0706__1.5__824___0") == PatchName("P0706", 824, 0, 1.5)
    assert parse_patch_name("P0706__1__10___20") == PatchName("P0706", 10, 20, 1.0)
    assert parse_patch_name("P0706__2__10___20") == PatchName("P0706", 10, 20, 2.0)
    assert parse_patch_name("P0706__1024__824___0") == PatchName("P0706", 824, 0, 1.0)
    assert parse_patch_name("a__b__0.5__0___64") == PatchName("a__b", 0, 64, 0.5)
    with pytest.raises(ValueError, match="must be positive"):
        parse_patch_name("P0706__0.0__0___0")
    # a plane at (100, 60), 8 x 4 px in the source: (40 + 10, 20 + 10) in the half-size image
    half = PatchDetections("P1__0.5__40___20", np.array([[10, 10, 4, 2, 0.3]], np.float32),
                           np.array([0.9], np.float32), np.array([0]))
    full = PatchDetections("P1__1024__0___0", np.array([[20, 30, 6, 6, 0.0]], np.float32),
                           np.array([0.8], np.float32), np.array([1]))
    merged = merge_patch_detections([half, full], num_classes=3)
    np.testing.assert_allclose(merged["P1"][0], [[100, 60, 8, 4, 0.3, 0.9]], atol=1e-5)
    np.testing.assert_allclose(merged["P1"][1], [[20, 30, 6, 6, 0.0, 0.8]], atol=1e-5)


def test_metric_scores_multi_scale_patches_on_the_whole_image(tmp_path: Path) -> None:
    ann = tmp_path / "labelTxt"
    write_labels(ann, "P1", [(tuple(2 * v for v in TRAPEZOID), "plane", 0)])  # 80 x 40
    hit_at_half = [HIT[0] - 4, HIT[1] - 2, HIT[2], HIT[3], 0.0]  # patch corner (4, 2)
    assert score(ann, [hit_at_half], img_id="P1__0.5__4___2") == 1.0
    assert score(ann, [hit_at_half], img_id="P1__1024__4___2") == 0.0  # read at rate 1


def test_task1_files_leave_out_classes_without_detections(tmp_path: Path) -> None:
    merged = {"P7": [np.array([[80, 50, 20, 10, 0.3, 0.9]], np.float32),
                     np.zeros((0, 6), np.float32), np.zeros((0, 6), np.float32)],
              "P2": [np.zeros((0, 6), np.float32),
                     np.array([[5, 5, 2, 2, 0.0, 0.125]], np.float32),
                     np.zeros((0, 6), np.float32)]}
    out = tmp_path / "Task1"
    zip_path = write_task1_submission(merged, CLASSES, out)
    assert sorted(p.name for p in out.glob("Task1_*.txt")) == ["Task1_plane.txt",
                                                               "Task1_ship.txt"]
    assert all(p.stat().st_size > 0 for p in out.glob("Task1_*.txt"))
    with zipfile.ZipFile(zip_path) as z:
        assert sorted(z.namelist()) == ["Task1_plane.txt", "Task1_ship.txt"]
        assert z.read("Task1_ship.txt").decode().split()[:2] == ["P2", "0.1250"]
