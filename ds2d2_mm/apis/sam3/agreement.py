"""Agreement between the outputs of two SAM3 models: box AP against a reference, mask IoU.

Box AP: the ORIGINAL model's detections whose score reaches ``ref_score_thr`` act as ground
truth; the FINE-TUNED model's detections (with their scores) are scored against them with
pycocotools' ``COCOeval`` (bbox, AP over IoU 0.50:0.95 and AP50, all areas). Each "query" (a
text prompt over all images, or one box exemplar on its image) is one COCO category, so AP is
the mean over queries that have at least one reference object. A model compared with itself
scores AP 1.0: every reference box is matched at IoU 1 by a detection that outranks every
unmatched one (unmatched detections score below ``ref_score_thr``).

Mask IoU: ``|A & B| / |A | B|`` of two boolean masks; two empty masks agree (IoU 1.0).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BoxAgreement", "Detections", "box_ap_against_reference", "mask_iou"]

#: Largest number of detections per image and query COCOeval keeps (above SAM3's 200 queries).
MAX_DETECTIONS = 1000


@dataclass
class Detections:
    """The detections of one model for one query on one image.

    Attributes:
        image: Image name.
        query: Query index (a COCO category of the evaluation).
        boxes: (K, 4) boxes ``x1, y1, x2, y2`` in pixels of the original image.
        scores: (K,) confidences in [0, 1].
        height, width: Size of the original image in pixels.
    """

    image: str
    query: int
    boxes: np.ndarray
    scores: np.ndarray
    height: int
    width: int


@dataclass
class BoxAgreement:
    """Box AP of predictions against a reference.

    Attributes:
        ap: COCO AP (IoU 0.50:0.95) over the queries with reference objects; ``None`` if none has.
        ap50: AP at IoU 0.5, same queries.
        per_query: Query index -> AP (IoU 0.50:0.95), ``None`` for a query without reference.
        num_reference: Reference objects (original's detections above the threshold).
        num_predicted: Predictions scored.
    """

    ap: float | None
    ap50: float | None
    per_query: dict[int, float | None]
    num_reference: int
    num_predicted: int


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def box_ap_against_reference(
    reference: Sequence[Detections],
    predicted: Sequence[Detections],
    ref_score_thr: float,
    num_queries: int,
) -> BoxAgreement:
    """COCO box AP of ``predicted`` with ``reference`` detections above ``ref_score_thr`` as truth.

    Args:
        reference: The original model's detections, one entry per (image, query).
        predicted: The fine-tuned model's detections for the same (image, query) pairs.
        ref_score_thr: Reference detections scoring at least this are ground truth.
        num_queries: Number of queries (COCO categories ``0 .. num_queries - 1``).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_ids: dict[str, int] = {}
    images, annotations = [], []
    for det in [*reference, *predicted]:
        if det.image not in image_ids:
            image_ids[det.image] = len(image_ids) + 1
            images.append({"id": image_ids[det.image], "height": det.height, "width": det.width})
    for det in reference:
        for box in det.boxes[det.scores >= ref_score_thr]:
            xywh = _xywh(box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_ids[det.image],
                "category_id": det.query, "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0,
            })
    results = [
        {"image_id": image_ids[det.image], "category_id": det.query, "bbox": _xywh(box),
         "score": float(score)}
        for det in predicted for box, score in zip(det.boxes, det.scores)
    ]
    per_query: dict[int, float | None] = {q: None for q in range(num_queries)}
    agreement = BoxAgreement(None, None, per_query, len(annotations), len(results))
    if not annotations:
        return agreement
    if not results:
        agreement.ap = agreement.ap50 = 0.0
        with_ref = {a["category_id"] for a in annotations}
        agreement.per_query.update({q: 0.0 for q in with_ref})
        return agreement
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {
            "images": images, "annotations": annotations,
            "categories": [{"id": q, "name": str(q)} for q in range(num_queries)],
        }
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iouType="bbox")
        evaluator.params.maxDets = [1, 10, MAX_DETECTIONS]
        evaluator.evaluate()
        evaluator.accumulate()
    # precision: (IoU thresholds, recall points, categories, area ranges, max dets), -1 where a
    # category has no ground truth; area range 0 is "all", max dets -1 is MAX_DETECTIONS. (Read
    # directly: COCOeval.summarize() fixes its AP rows at 100 detections.)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    iou_50 = int(np.argmin(np.abs(evaluator.params.iouThrs - 0.5)))
    agreement.ap = float(precision[precision > -1].mean())
    agreement.ap50 = float(precision[iou_50][precision[iou_50] > -1].mean())
    for k, query in enumerate(evaluator.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        per_query[query] = float(values.mean()) if values.size else None
    return agreement


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of the same (H, W) shape; 1.0 when both are empty."""
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)
