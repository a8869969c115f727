"""Helpers of the DOTA metric tests: class names, a labelTxt writer, the whole-image metric and
a prediction sample of rotated boxes."""

from __future__ import annotations

from pathlib import Path

import torch

CLASSES = ("plane", "ship", "storage-tank")


def write_labels(folder: Path, name: str, objects) -> None:
    """``folder/name.txt`` in DOTA's labelTxt format; ``objects``: (8 corner coordinates, class,
    difficult) triples."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["imagesource:GoogleEarth", "gsd:0.5"]
    lines += [" ".join([*(f"{v:g}" for v in poly), cls, str(d)]) for poly, cls, d in objects]
    (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")


def metric(**kwargs):
    """A ``DOTAWholeImageMetric`` over :data:`CLASSES`."""
    from ds2d2_mm.evaluation import DOTAWholeImageMetric

    m = DOTAWholeImageMetric(**kwargs)
    m.dataset_meta = dict(classes=CLASSES)
    return m


def sample(img_id, boxes, scores, labels) -> dict:
    """One patch's predictions: ``boxes`` (N, 5) rotated boxes, ``scores`` (N,), ``labels`` (N,)."""
    from mmrotate.structures.bbox import RotatedBoxes

    return dict(img_id=img_id, pred_instances=dict(
        bboxes=RotatedBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 5)),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.int64)))
