"""DOTA whole images from patches: patch detections merged back, and Task1 submission files.

The splitter (:mod:`ds2d2_mm.datasets.converters.dota_split`) names each patch
``<name>__<size>__<x>___<y>``, with ``(x, y)`` its top-left corner in the source image. Merging
shifts every oriented detection ``(cx, cy, w, h, angle)`` of a patch by that corner, gathers the
detections of all patches of one source image, and suppresses duplicates per class with rotated NMS
(objects in the overlap of two patches are seen twice).

A Task1 submission of the DOTA evaluation server is one ``Task1_<class>.txt`` per class, with one
line per detection ``<image_id> <score> x1 y1 x2 y2 x3 y3 x4 y4`` (corners of the oriented box in
source-image pixels), the files zipped together.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ...utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["PatchDetections", "merge_patch_detections", "parse_patch_id", "rbox_corners",
           "write_task1_submission"]

_PATCH_ID = re.compile(r"^(?P<name>.+)__(?P<size>\d+)__(?P<x>-?\d+)___(?P<y>-?\d+)$")


@dataclass
class PatchDetections:
    """Detections of one patch, in patch pixels.

    Attributes:
        img_id: The patch name ``<name>__<size>__<x>___<y>`` (file name without suffix).
        bboxes: (k, 5) oriented boxes cx, cy, w, h, angle (radians).
        scores: (k,) scores.
        labels: (k,) 0-based class indices.
    """

    img_id: str
    bboxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def parse_patch_id(img_id: str) -> tuple[str, int, int]:
    """``'P0003__1024__824___0'`` -> ``('P0003', 824, 0)``: the source image and the corner.

    Raises:
        ValueError: ``img_id`` is not a patch name of the splitter, naming it.
    """
    match = _PATCH_ID.match(os.path.basename(str(img_id)))
    if match is None:
        raise ValueError(f"{img_id!r} is not a DOTA patch name '<image>__<size>__<x>___<y>'; "
                         "whole-image evaluation needs the patches of tools/data/split_dota.py")
    return match["name"], int(match["x"]), int(match["y"])


def _nms_rotated(boxes: Tensor, scores: Tensor, iou_thr: float) -> Tensor:
    """Indices kept by mmcv's rotated NMS, highest score first."""
    from mmcv.ops import nms_rotated

    _, keep = nms_rotated(boxes, scores, iou_thr)
    return keep


def merge_patch_detections(
    patches: Iterable[PatchDetections], num_classes: int, iou_thr: float = 0.1
) -> dict[str, list[np.ndarray]]:
    """Detections of whole source images from those of their patches.

    Args:
        patches: Detections per patch (patch pixels); a source image appears once every patch of
            it was seen, with or without detections.
        num_classes: Number of classes.
        iou_thr: Rotated-IoU threshold of the per-class NMS across patches (mmrotate's DOTA
            merging uses 0.1).

    Returns:
        ``{image name: [per class (m, 6) float32 array of cx, cy, w, h, angle, score]}``, boxes
        in source-image pixels, each class sorted by decreasing score.
    """
    gathered: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
    for patch in patches:
        name, x, y = parse_patch_id(patch.img_id)
        boxes = np.asarray(patch.bboxes, dtype=np.float32).reshape(-1, 5).copy()
        boxes[:, 0] += x
        boxes[:, 1] += y
        gathered[name].append((boxes, np.asarray(patch.scores, dtype=np.float32).reshape(-1),
                               np.asarray(patch.labels).reshape(-1).astype(np.int64)))
    merged: dict[str, list[np.ndarray]] = {}
    for name, parts in gathered.items():
        boxes = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        labels = np.concatenate([p[2] for p in parts])
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name}: detection labels outside 0..{num_classes - 1}")
        per_class = []
        for c in range(num_classes):
            sel = labels == c
            if not sel.any():
                per_class.append(np.zeros((0, 6), dtype=np.float32))
                continue
            b, s = torch.from_numpy(boxes[sel]), torch.from_numpy(scores[sel])
            keep = _nms_rotated(b, s, iou_thr).numpy()
            per_class.append(np.concatenate([boxes[sel][keep], scores[sel][keep, None]], axis=1))
        merged[name] = per_class
    return merged


def rbox_corners(boxes: np.ndarray) -> np.ndarray:
    """(k, 5) cx, cy, w, h, angle -> (k, 8) corners x1 y1 ... x4 y4.

    The corners are ``centre + R(angle) @ (+-w/2, +-h/2)`` in the order (-w/2, -h/2),
    (+w/2, -h/2), (+w/2, +h/2), (-w/2, +h/2): clockwise on screen (y down) for mmrotate's
    angle convention.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    cx, cy, w, h, a = (boxes[:, i : i + 1] for i in range(5))
    cos, sin = np.cos(a), np.sin(a)
    du = np.array([-0.5, 0.5, 0.5, -0.5])[None] * w
    dv = np.array([-0.5, -0.5, 0.5, 0.5])[None] * h
    xs, ys = cx + du * cos - dv * sin, cy + du * sin + dv * cos
    return np.stack([xs, ys], axis=2).reshape(-1, 8)


def write_task1_submission(
    merged: dict[str, Sequence[np.ndarray]], classes: Sequence[str], out_dir: str | os.PathLike
) -> Path:
    """Write ``Task1_<class>.txt`` for every class and their zip into ``out_dir``.

    The folder must not hold an earlier submission (nothing already written is overwritten).
    Each file is written atomically.

    Returns:
        Path of the zip, ``<out_dir>/<basename of out_dir>.zip``.

    Raises:
        FileExistsError: ``out_dir`` already holds Task1 files or the zip, naming it.
    """
    out = Path(out_dir)
    zip_path = out / f"{out.resolve().name}.zip"
    if zip_path.exists() or (out.is_dir() and any(out.glob("Task1_*.txt"))):
        raise FileExistsError(f"{out} already holds a DOTA submission: give another "
                              "outfile_prefix or move it away")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for c, cls in enumerate(classes):
        lines = []
        for name in sorted(merged):
            dets = merged[name][c]
            if len(dets) == 0:
                continue
            for corners, score in zip(rbox_corners(dets[:, :5]), dets[:, 5], strict=True):
                lines.append(" ".join([name, f"{float(score):.4f}",
                                       *(f"{v:.2f}" for v in corners)]))
        path = out / f"Task1_{cls}.txt"
        atomic_write_text(path, "".join(line + "\n" for line in lines))
        files.append(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, path.name)
    atomic_write_bytes(zip_path, buffer.getvalue())
    return zip_path

