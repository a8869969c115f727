"""PyTorch against ONNX Runtime detections of the same images, after NMS.

Detections are matched one to one (same label, boxes within ``box_tol`` px on every coordinate,
scores within ``score_tol``), so that a reordering of near-equal scores is not a failure while a
missing, extra or moved detection is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: The tolerances the tool checks (boxes in input-image pixels, after NMS).
BOX_TOL = 1e-3
SCORE_TOL = 1e-4


def _match(ref, got, box_tol: float, score_tol: float) -> tuple[int, float, float]:
    """Greedy one-to-one match of two ``InstanceData``; returns (matched, max box diff, max
    score diff) over the matched pairs (each ref detection takes its closest free partner)."""
    if len(ref) == 0 or len(got) == 0:
        return 0, 0.0, 0.0
    box_d = (ref.bboxes[:, None, :] - got.bboxes[None, :, :]).abs().amax(-1)  # (n_ref, n_got)
    score_d = (ref.scores[:, None] - got.scores[None, :]).abs()
    ok = (ref.labels[:, None] == got.labels[None, :]) & (box_d <= box_tol) & (score_d <= score_tol)
    inf = torch.full_like(box_d, float("inf"))
    cost = torch.where(ok, box_d / box_tol + score_d / score_tol, inf)
    free = torch.ones(len(got), dtype=torch.bool)
    matched, worst_box, worst_score = 0, 0.0, 0.0
    for i in range(len(ref)):
        row = torch.where(free, cost[i], torch.full_like(cost[i], float("inf")))
        j = int(row.argmin())
        if torch.isfinite(row[j]):
            free[j] = False
            matched += 1
            worst_box = max(worst_box, float(box_d[i, j]))
            worst_score = max(worst_score, float(score_d[i, j]))
    return matched, worst_box, worst_score


def compare_detections(ref: Sequence, got: Sequence, box_tol: float = BOX_TOL,
                       score_tol: float = SCORE_TOL) -> dict:
    """Compare per-image detections (``DetDataSample`` lists, ``pred_instances``).

    Returns:
        ``passed``, ``images``, ``detections`` (reference total), ``unmatched`` (detections of
        either side without a partner), ``max_box_diff_px``, ``max_score_diff``, the tolerances.
    """
    if len(ref) != len(got):
        raise ValueError(f"{len(ref)} reference images against {len(got)}")
    total = unmatched = 0
    worst_box = worst_score = 0.0
    for r, g in zip(ref, got):
        a, b = r.pred_instances.cpu(), g.pred_instances.cpu()
        matched, wb, ws = _match(a, b, box_tol, score_tol)
        total += len(a)
        unmatched += (len(a) - matched) + (len(b) - matched)
        worst_box, worst_score = max(worst_box, wb), max(worst_score, ws)
    return {"passed": unmatched == 0, "images": len(ref), "detections": total,
            "unmatched": unmatched, "max_box_diff_px": worst_box, "max_score_diff": worst_score,
            "box_tol_px": box_tol, "score_tol": score_tol}
