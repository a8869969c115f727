"""The rotated-NMS threshold that merges DOTA patch detections back into whole images.

mmrotate merges at IoU 0.1, the default of ``merge_patch_detections`` and of
``DOTAWholeImageMetric.merge_iou_thr``. Two detections of one class from two overlapping patches
are placed at a chosen IoU on either side of that threshold (and of a threshold given
explicitly), up to 0.94; the IoU is computed here from the two polygons (shapely), not taken
from mmcv.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mmrotate")
shapely = pytest.importorskip("shapely")

from ds2d2_mm.evaluation import (  # noqa: E402
    PatchDetections,
    merge_patch_detections,
    rbox_corners,
)

#: mmrotate's merge threshold (its DOTA merging, ``nms_rotated`` at 0.1).
MMROTATE_MERGE_IOU = 0.1
W, H, ANGLE = 40.0, 10.0, 0.3  # the object: 40 x 10 px, rotated by 0.3 rad
TURN = 0.01  # the second detection's extra rotation: no two edges collinear (see below)
A = (50.0, 50.0)  # its centre in the source image


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two oriented boxes (cx, cy, w, h, angle) from their polygons (shapely)."""
    from shapely.geometry import Polygon

    pa, pb = (Polygon(rbox_corners(np.asarray(x)[None]).reshape(4, 2)) for x in (a, b))
    return pa.intersection(pb).area / pa.union(pb).area


def pair_at_iou(iou: float) -> np.ndarray:
    """(2, 5) boxes: the object, and a detection of it turned by ``TURN`` and shifted along the
    object's long side until the two overlap at ``iou`` (bisection on the polygon IoU, which
    falls as the shift grows).

    The turn keeps the pair in general position: for two equal boxes shifted along an edge
    (collinear edges), mmcv's float32 ``box_iou_rotated`` is wrong at some angles (0.20 for a
    pair at IoU 0.5 rotated by 0.3 rad), which would test mmcv, not the threshold."""
    def boxes(d: float) -> np.ndarray:
        return np.array([[*A, W, H, ANGLE],
                         [A[0] + d * math.cos(ANGLE), A[1] + d * math.sin(ANGLE), W, H,
                          ANGLE + TURN]])

    lo, hi = 0.0, W + H
    assert polygon_iou(*boxes(lo)) > iou > polygon_iou(*boxes(hi))
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if polygon_iou(*boxes(mid)) > iou else (lo, mid)
    return boxes(lo)


def two_patches(boxes: np.ndarray) -> list[PatchDetections]:
    """The first box seen by the patch at x = 0 (score 0.9), the second by the patch at x = 30
    (score 0.8), each in its patch's pixels."""
    second = boxes[1].copy()
    second[0] -= 30
    return [PatchDetections("P5__100__0___0", boxes[:1].astype(np.float32), np.array([0.9]),
                            np.array([0])),
            PatchDetections("P5__100__30___0", second[None].astype(np.float32), np.array([0.8]),
                            np.array([0]))]


@pytest.mark.parametrize("iou", [0.07, 0.12, 0.5, 0.9, 0.94])
def test_the_pairs_overlap_as_asked_and_mmcv_agrees(iou):
    import torch
    from mmcv.ops import box_iou_rotated

    boxes = pair_at_iou(iou)
    assert polygon_iou(*boxes) == pytest.approx(iou, abs=1e-9)
    t = torch.from_numpy(boxes).float()
    assert box_iou_rotated(t[:1], t[1:]).item() == pytest.approx(iou, abs=1e-4)


#: (IoU of the pair, kept by the default threshold) on both sides of 0.1 and up to 0.95.
DEFAULT_CASES = [(0.07, 2), (0.095, 2), (0.105, 1), (0.12, 1), (0.3, 1), (0.6, 1), (0.9, 1),
                 (0.94, 1)]


@pytest.mark.parametrize(("iou", "kept"), DEFAULT_CASES)
def test_the_default_merge_threshold_is_mmrotates(iou, kept):
    boxes = pair_at_iou(iou)
    assert polygon_iou(*boxes) == pytest.approx(iou, abs=1e-6)
    assert (iou > MMROTATE_MERGE_IOU) == (kept == 1)
    merged = merge_patch_detections(two_patches(boxes), num_classes=1)["P5"][0]
    assert len(merged) == kept
    np.testing.assert_allclose(merged[0], [*boxes[0], 0.9], atol=1e-4)  # the best one stays
    if kept == 2:
        np.testing.assert_allclose(merged[1], [*boxes[1], 0.8], atol=1e-4)


@pytest.mark.parametrize(("thr", "iou", "kept"), [(0.5, 0.45, 2), (0.5, 0.55, 1),
                                                  (0.8, 0.75, 2), (0.8, 0.85, 1)])
def test_a_given_threshold_is_the_one_used(thr, iou, kept):
    boxes = pair_at_iou(iou)
    assert polygon_iou(*boxes) == pytest.approx(iou, abs=1e-6)
    merged = merge_patch_detections(two_patches(boxes), num_classes=1, iou_thr=thr)["P5"][0]
    assert len(merged) == kept


def _metric_ap(tmp_path, iou: float, **kwargs) -> float:
    """AP50 of the whole-image metric on one image with two planes: plane 1 seen by both
    patches (the second detection at ``iou`` with the first), plane 2 once, scored 0.7.

    Kept, the duplicate (0.8) ranks between the two true positives: VOC07 AP (6 + 5 * 2/3) / 11;
    merged, AP 1."""
    import torch
    from mmrotate.structures.bbox import RotatedBoxes

    from ds2d2_mm.evaluation import DOTAWholeImageMetric

    boxes = pair_at_iou(iou)
    plane2 = np.array([110.0, 80.0, 20.0, 10.0, 0.0])
    ann = tmp_path / f"labels_{iou}"
    ann.mkdir()
    lines = [" ".join([*(f"{v:.4f}" for v in rbox_corners(b[None])[0]), "plane", "0"])
             for b in (boxes[0], plane2)]
    (ann / "P5.txt").write_text("\n".join(lines) + "\n")
    metric = DOTAWholeImageMetric(ann_dir=str(ann), **kwargs)
    metric.dataset_meta = dict(classes=("plane",))
    samples = []
    for patch in two_patches(boxes):
        b, s = patch.bboxes, patch.scores
        if patch.img_id.endswith("__30___0"):  # the second patch also sees plane 2
            b = np.concatenate([b, (plane2 - [30, 0, 0, 0, 0])[None]]).astype(np.float32)
            s = np.concatenate([s, [0.7]])
        samples.append(dict(img_id=patch.img_id, pred_instances=dict(
            bboxes=RotatedBoxes(torch.from_numpy(b)), scores=torch.tensor(s, dtype=torch.float32),
            labels=torch.zeros(len(s), dtype=torch.int64))))
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)["AP50"]


KEPT_AP = round((6 + 5 * 2 / 3) / 11, 4)


@pytest.mark.parametrize(("iou", "ap"), [(0.07, KEPT_AP), (0.12, 1.0), (0.5, 1.0), (0.9, 1.0)])
def test_the_whole_image_metric_merges_at_mmrotates_threshold(tmp_path, iou, ap):
    assert _metric_ap(tmp_path, iou) == pytest.approx(ap, abs=1e-4)


def test_the_metric_passes_its_merge_threshold_on(tmp_path):
    assert _metric_ap(tmp_path, 0.5, merge_iou_thr=0.6) == pytest.approx(KEPT_AP, abs=1e-4)
