"""DOTA whole images from patches: patch detections merged back, and Task1 submission files.

The splitter (:mod:`ds2d2_mm.datasets.converters.dota_split`) and MMRotate's ``img_split.py``
name each patch ``<name>__<size>__<x>___<y>``, with ``(x, y)`` its top-left corner in the source
image. The DOTA devkit's multi-scale splits name it ``<name>__<rate>__<x>___<y>``
(``P0706__0.5__0___0``): the source image was resized by ``rate`` before splitting, so ``(x, y)``
are pixels of the resized image. The middle field is read as a rate when it has a decimal point or
is an integer below :data:`MIN_PATCH_SIZE` (the devkit writes ``str(rate)``: ``1``, ``2``,
``0.5``, ``1.5``), and as a patch size otherwise (rate 1).

Merging shifts every oriented detection ``(cx, cy, w, h, angle)`` of a patch by that corner,
divides centre and size by the rate, gathers the detections of all patches of one source image,
and suppresses duplicates per class with rotated NMS (objects in the overlap of two patches are
seen twice).

A Task1 submission of the DOTA evaluation server is one ``Task1_<class>.txt`` per class with
detections, with one line per detection ``<image_id> <score> x1 y1 x2 y2 x3 y3 x4 y4`` (corners of
the oriented box in source-image pixels), the files zipped together. A class without detections
has no file (the server accepts a submission without it; the devkit's own evaluation script fails
on an empty file).
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

__all__ = ["MIN_PATCH_SIZE", "PatchDetections", "PatchName", "merge_patch_detections",
           "parse_patch_id", "parse_patch_name", "rbox_corners", "write_task1_submission"]

_PATCH_ID = re.compile(
    r"^(?P<name>.+)__(?P<scale>\d+(?:\.\d*)?|\.\d+)__(?P<x>-?\d+)___(?P<y>-?\d+)$")
#: An integer middle field below this is a rate (the devkit's ``__1__``), not a patch size.
MIN_PATCH_SIZE = 16


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


@dataclass(frozen=True)
class PatchName:
    """A parsed patch name: source image, corner ``(x, y)`` (pixels of the source image resized
    by ``rate``) and ``rate`` (1.0 for the ``<name>__<size>__<x>___<y>`` names)."""

    name: str
    x: int
    y: int
    rate: float = 1.0


def parse_patch_name(img_id: str) -> PatchName:
    """``'P0003__1024__824___0'`` -> ``PatchName('P0003', 824, 0, 1.0)``;
    ``'P0706__0.5__0___512'`` -> ``PatchName('P0706', 0, 512, 0.5)`` (see the module docstring).

    Raises:
        ValueError: ``img_id`` is not a patch name, or its rate is 0, naming it.
    """
    match = _PATCH_ID.match(os.path.basename(str(img_id)))
    if match is None:
        raise ValueError(f"{img_id!r} is not a DOTA patch name '<image>__<size>__<x>___<y>' "
                         "(or the devkit's '<image>__<rate>__<x>___<y>'); whole-image evaluation "
                         "needs the patches of tools/data/split_dota.py")
    scale = match["scale"]
    is_rate = "." in scale or int(scale) < MIN_PATCH_SIZE
    rate = float(scale) if is_rate else 1.0
    if rate <= 0:
        raise ValueError(f"{img_id!r}: the rate field {scale!r} of a multi-scale patch name "
                         "must be positive")
    return PatchName(match["name"], int(match["x"]), int(match["y"]), rate)


def parse_patch_id(img_id: str) -> tuple[str, int, int]:
    """``'P0003__1024__824___0'`` -> ``('P0003', 824, 0)``: the source image and the corner
    (the rate of a multi-scale name is left out; :func:`parse_patch_name` has it).

    Raises:
        ValueError: ``img_id`` is not a patch name of the splitter, naming it.
    """
    patch = parse_patch_name(img_id)
    return patch.name, patch.x, patch.y


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
            it was seen, with or without detections. Patches of a multi-scale split (a rate in
            the name) are scaled back to source-image pixels.
        num_classes: Number of classes.
        iou_thr: Rotated-IoU threshold of the per-class NMS across patches (mmrotate's DOTA
            merging uses 0.1).

    Returns:
        ``{image name: [per class (m, 6) float32 array of cx, cy, w, h, angle, score]}``, boxes
        in source-image pixels, each class sorted by decreasing score.
    """
    gathered: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = defaultdict(list)
    for patch in patches:
        where = parse_patch_name(patch.img_id)
        name = where.name
        boxes = np.asarray(patch.bboxes, dtype=np.float32).reshape(-1, 5).copy()
        boxes[:, 0] += where.x
        boxes[:, 1] += where.y
        if where.rate != 1.0:
            boxes[:, :4] /= where.rate
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
    """Write ``Task1_<class>.txt`` for every class with detections and their zip into
    ``out_dir``.

    A class without detections gets no file (an empty one breaks the DOTA devkit's evaluation
    script; the server accepts a submission without it). The folder must not hold an earlier
    submission (nothing already written is overwritten). Each file is written atomically.

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
        if not lines:
            continue
        path = out / f"Task1_{cls}.txt"
        atomic_write_text(path, "".join(line + "\n" for line in lines))
        files.append(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, path.name)
    atomic_write_bytes(zip_path, buffer.getvalue())
    return zip_path

