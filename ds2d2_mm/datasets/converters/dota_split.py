"""Splits DOTA images into overlapping square patches, as mmrotate 1.x's ``DOTADataset`` reads them.

Input (official layout): ``<src>/images/<name>.png`` and ``<src>/labelTxt/<name>.txt`` (the
label folder may be absent, e.g. for the test split: then only patch images are written).

Output under ``<out>``::

    images/<name>__<size>__<x>___<y>.png     patches, zero-padded to size x size
    annfiles/<name>__<size>__<x>___<y>.txt   DOTA lines (no header), patch coordinates
    .done/<name>.json                        per-source-image marker, written last

An object is kept in a patch when at least ``iof_thr`` of its polygon's area lies inside the
patch. Objects entirely inside keep their corners (shifted). Truncated ones (part of the polygon
outside the patch) are written as MMRotate's own splitter (``tools/data/dota/split/img_split.py``)
writes them, ``truncated='polygon'`` (the default): the whole polygon, shifted, corners in the
file's order (DOTA's first point first), with ``difficult = 2``, so that they can be told from
objects labelled difficult (1). ``truncated='rectangle'`` is this project's earlier convention:
the minimum-area rotated rectangle of the part inside the patch (clockwise from the top-most
corner) with ``difficult = 1``. Either way, MMRotate's ``DOTADataset`` ignores neither (its
``diff_thr`` is 100); the COCO json's horizontal box is the part inside the patch.

Bad objects cost the object, never the image: a polygon with no area, or none inside the image,
is dropped and listed (file, line, object index) in the summary and in
``<out>/conversion_report.json``; ``strict`` stops at the first one instead (or skips its image,
with ``skip_bad``). A source folder without images, or a run in which every image is skipped, is
an error.

Every file is written atomically and each image's marker is written after its patches, so an
interrupted run is resumed by running the same command again (which also removes the hidden
temporaries of writes the interruption cut short; pool workers die with a killed parent): images
with a valid marker are not touched, and patches already on disk are not rewritten unless their
content changes (a changed label file rewrites label files only). An image skipped by
``skip_bad`` loses the patches an earlier run wrote for it, so the output always mirrors the
current source.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely
from tqdm import tqdm

from ...utils.errors import AnnotationError, DatasetError, DatasetLayoutError, ImageError
from ...utils.io import (
    atomic_write_image,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
)
from ..classes import DOTA_CLASSES
from .common import REPORT_NAME, CocoBuilder, ObjectLog, describe, run_tasks, write_report
from .dota_format import DotaObject, format_dota_line, parse_dota_txt

__all__ = ["PatchObject", "SplitParams", "crop_objects", "patch_name", "split_dota",
           "window_starts"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_IOF_EPS = 1e-6
_DONE_DIR = ".done"
_MARKER_VERSION = 2
#: The smallest patch side (``evaluation.functional.dota_merge.MIN_PATCH_SIZE``).
_MIN_PATCH_SIZE = 16
#: How truncated objects are written: MMRotate's convention, or this project's earlier one.
TRUNCATED_MODES = ("polygon", "rectangle")
#: The difficult flag of a truncated object per mode (MMRotate's splitter writes 2).
TRUNCATED_DIFFICULT = {"polygon": 2, "rectangle": 1}


@dataclass(frozen=True)
class SplitParams:
    """Patch size and overlap (pixels), the kept-area threshold of truncated objects and how
    they are written (:data:`TRUNCATED_MODES`)."""

    size: int = 1024
    gap: int = 200
    iof_thr: float = 0.7
    truncated: str = "polygon"

    def __post_init__(self) -> None:
        if self.size < _MIN_PATCH_SIZE:
            raise ValueError(f"size must be at least {_MIN_PATCH_SIZE} px (a smaller number in a "
                             f"patch name reads as the DOTA devkit's scale rate), got {self.size}")
        if not 0 <= self.gap < self.size:
            raise ValueError(f"need 0 <= gap < size, got size={self.size}, gap={self.gap}")
        if not 0.0 < self.iof_thr <= 1.0:
            raise ValueError(f"iof_thr must be in (0, 1], got {self.iof_thr}")
        if self.truncated not in TRUNCATED_MODES:
            raise ValueError(f"truncated must be one of {TRUNCATED_MODES}, got "
                             f"{self.truncated!r}")


@dataclass(frozen=True)
class PatchObject:
    """An object inside one patch (patch coordinates).

    Attributes:
        poly: 4 corners ``(x1, y1, ..., x4, y4)``.
        hbox: ``(x1, y1, x2, y2)`` of the part inside the patch.
        label: 0-based class index.
        difficult: The source flag, or (truncated) 2 (``'polygon'``) or 1 (``'rectangle'``).
        truncated: Whether part of the object lies outside the patch.
    """

    poly: tuple[float, ...]
    hbox: tuple[float, float, float, float]
    label: int
    difficult: int
    truncated: bool


def window_starts(length: int, size: int, gap: int) -> list[int]:
    """Window offsets along one axis: ``0, size - gap, ...``, the last one flush with the edge.

    A length not above ``size`` gives the single offset 0 (the patch is padded).
    """
    if length <= size:
        return [0]
    starts = list(range(0, length - size, size - gap))
    starts.append(length - size)
    return starts


def patch_name(name: str, size: int, x: int, y: int) -> str:
    """The DOTA-devkit style patch name ``<name>__<size>__<x>___<y>``."""
    return f"{name}__{size}__{x}___{y}"


def _clockwise_from_top(corners: np.ndarray) -> np.ndarray:
    """Corners ``(4, 2)`` reordered clockwise on screen (y down), starting at the top-most one."""
    x, y = corners[:, 0], corners[:, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:
        corners = corners[::-1]
    first = min(range(len(corners)), key=lambda i: (corners[i, 1], corners[i, 0]))
    return np.roll(corners, -first, axis=0)


def _round(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 2) for v in values)


class _ObjectGeometry:
    """Polygons of one image's objects, prepared once for cropping into many windows."""

    def __init__(self, objects: Sequence[DotaObject],
                 image_size: tuple[int, int] | None = None) -> None:
        self.objects = list(objects)
        coords = np.asarray([o.poly for o in self.objects], dtype=np.float64)
        self.corners = coords.reshape(-1, 4, 2)
        self.hulls = shapely.convex_hull(shapely.polygons(self.corners))
        self.areas = shapely.area(self.hulls) if len(self.objects) else np.zeros(0)
        self.lo = self.corners.min(axis=1)  # (N, 2)
        self.hi = self.corners.max(axis=1)
        #: Why each object is dropped (``None``: kept): no area, or none inside the image.
        self.problems: list[str | None] = [None] * len(self.objects)
        inside = (shapely.area(shapely.intersection(self.hulls, shapely.box(0, 0, *image_size)))
                  if image_size is not None and len(self.objects) else None)
        for i, obj in enumerate(self.objects):
            written = "(" + ", ".join(f"{v:g}" for v in obj.poly) + ")"
            if self.areas[i] <= 0:
                self.problems[i] = f"polygon {written} has no area"
            elif inside is not None and inside[i] <= 0:
                self.problems[i] = (f"polygon {written} lies outside the "
                                    f"{image_size[0]}x{image_size[1]} image")
        self.kept = np.array([p is None for p in self.problems], dtype=bool)

    @property
    def num_degenerate(self) -> int:
        return int((self.areas <= 0).sum())

    def log(self, path: str | os.PathLike, strict: bool = False) -> list[dict]:
        """The dropped objects as :class:`~.common.ObjectLog` entries (``strict``: raise)."""
        log = ObjectLog(strict=strict)
        for i, problem in enumerate(self.problems):
            if problem is not None:
                log.dropped(path, self.objects[i].line or None, i + 1, problem)
        return log.entries

    def crop(self, x0: int, y0: int, size: int, iof_thr: float,
             truncated: str = "polygon") -> list[PatchObject]:
        origin = np.array([x0, y0], dtype=np.float64)
        end = origin + size
        overlaps = np.all(self.lo < end, axis=1) & np.all(self.hi > origin, axis=1)
        candidates = np.nonzero(overlaps & self.kept)[0]
        if not len(candidates):
            return []
        parts = shapely.intersection(self.hulls[candidates], shapely.box(x0, y0, *end))
        iofs = shapely.area(parts) / self.areas[candidates]
        out = []
        for i, part, iof in zip(candidates, parts, iofs):
            if iof < iof_thr - _IOF_EPS:
                continue
            obj = self.objects[i]
            inside = bool(np.all(self.lo[i] >= origin) and np.all(self.hi[i] <= end))
            if inside:
                corners, difficult = self.corners[i], obj.difficult
            elif truncated == "polygon":  # MMRotate's splitter: the polygon as written
                corners, difficult = self.corners[i], TRUNCATED_DIFFICULT[truncated]
            else:
                rect = shapely.oriented_envelope(part)
                if rect.geom_type != "Polygon":
                    continue
                corners = _clockwise_from_top(np.asarray(rect.exterior.coords)[:4])
                difficult = TRUNCATED_DIFFICULT[truncated]
            lo, hi = np.reshape(shapely.bounds(part), (2, 2))
            hbox = np.concatenate([np.clip(lo - origin, 0, size), np.clip(hi - origin, 0, size)])
            out.append(PatchObject(poly=_round((corners - origin).ravel()), hbox=_round(hbox),
                                   label=obj.label, difficult=difficult, truncated=not inside))
        return out


def crop_objects(
    objects: Sequence[DotaObject], x: int, y: int, size: int, iof_thr: float = 0.7,
    truncated: str = "polygon",
) -> list[PatchObject]:
    """The objects kept in the window ``[x, x + size) x [y, y + size)``, in patch coordinates
    (``truncated``: how a truncated object is written, see the module docstring)."""
    if truncated not in TRUNCATED_MODES:
        raise ValueError(f"truncated must be one of {TRUNCATED_MODES}, got {truncated!r}")
    return _ObjectGeometry(objects).crop(x, y, size, iof_thr, truncated)


@dataclass(frozen=True)
class _ImageTask:
    name: str
    image_path: str
    label_path: str | None
    objects: tuple[DotaObject, ...] | None  # None: no labels, images only
    out_dir: str
    params: SplitParams
    strict: bool = False


def _fingerprint(path: str | None) -> list[int] | None:
    """Size and modification time of a source file (``None`` for no file)."""
    if path is None:
        return None
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def _read_marker(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_patch(task: _ImageTask, image: np.ndarray, x: int, y: int, name: str,
                 objects: list[PatchObject] | None, trust_existing: bool) -> bool:
    """Writes one patch image (and label file); returns whether anything was (re)written."""
    out, size = Path(task.out_dir), task.params.size
    written = False
    image_file = out / "images" / f"{name}.png"
    if not (trust_existing and image_file.is_file()):
        patch = np.zeros((size, size, image.shape[2]), dtype=image.dtype)
        crop = image[y:y + size, x:x + size]
        patch[: crop.shape[0], : crop.shape[1]] = crop
        atomic_write_image(image_file, patch)
        written = True
    if objects is not None:
        text = "".join(
            format_dota_line(o.poly, DOTA_CLASSES[o.label], o.difficult) + "\n" for o in objects
        )
        ann_file = out / "annfiles" / f"{name}.txt"
        if not (ann_file.is_file() and ann_file.read_text() == text):
            atomic_write_text(ann_file, text)
            written = True
    return written


def _remove_stale(out: Path, old_names: set[str], new_names: set[str]) -> None:
    for name in old_names - new_names:
        for stale in (out / "images" / f"{name}.png", out / "annfiles" / f"{name}.txt"):
            stale.unlink(missing_ok=True)


def _forget_image(out: Path, name: str) -> None:
    """Removes the patches and marker an earlier run wrote for a source image now skipped."""
    marker_path = out / _DONE_DIR / f"{name}.json"
    old = _read_marker(marker_path)
    if old is not None:
        _remove_stale(out, {p["name"] for p in old.get("result", {}).get("patches", [])}, set())
    marker_path.unlink(missing_ok=True)


def _outputs_exist(task: _ImageTask, marker: dict) -> bool:
    """Whether every patch file a marker lists is still on disk."""
    out = Path(task.out_dir)
    for patch in marker.get("result", {}).get("patches", []):
        if not (out / "images" / f"{patch['name']}.png").is_file():
            return False
        if task.objects is not None and not (out / "annfiles" / f"{patch['name']}.txt").is_file():
            return False
    return True


def _split_image(task: _ImageTask) -> dict:
    """Splits one source image; returns its patch records and counts (worker function)."""
    out, params = Path(task.out_dir), task.params
    marker_path = out / _DONE_DIR / f"{task.name}.json"
    state = {"version": _MARKER_VERSION, "params": asdict(params), "strict": task.strict,
             "image": _fingerprint(task.image_path), "labels": _fingerprint(task.label_path),
             "with_labels": task.objects is not None}
    old = _read_marker(marker_path)
    if old is not None and old.get("state") == state and _outputs_exist(task, old):
        return {**old["result"], "image_reused": True, "patches_written": 0,
                "patches_reused": len(old["result"]["patches"])}
    image = cv2.imread(task.image_path, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(task.image_path, "cannot read the image (missing, truncated or not an "
                         "image file)")
    height, width = image.shape[:2]
    geometry = _ObjectGeometry(task.objects or (), image_size=(width, height))
    dropped = geometry.log(task.label_path, strict=task.strict) if task.label_path else []
    # Patch images depend only on the source image (and the window), so they are reused unless
    # the source image changed; label files are compared by content when written.
    trust_existing = old is None or old.get("state", {}).get("image") == state["image"]
    patches, written = [], 0
    for y in window_starts(height, params.size, params.gap):
        for x in window_starts(width, params.size, params.gap):
            name = patch_name(task.name, params.size, x, y)
            objects = None
            if task.objects is not None:
                objects = geometry.crop(x, y, params.size, params.iof_thr, params.truncated)
            written += _write_patch(task, image, x, y, name, objects, trust_existing)
            patches.append({"name": name, "objects": [
                [o.label, o.difficult, int(o.truncated), *o.hbox] for o in objects or ()
            ]})
    if old is not None:
        old_names = {p["name"] for p in old.get("result", {}).get("patches", [])}
        _remove_stale(out, old_names, {p["name"] for p in patches})
    result = {"name": task.name, "num_objects": len(geometry.objects),
              "num_degenerate": geometry.num_degenerate, "dropped": dropped, "patches": patches}
    atomic_write_json(marker_path, {"state": state, "result": result})
    return {**result, "image_reused": False, "patches_written": written,
            "patches_reused": len(patches) - written}


def _collect_tasks(src: Path, out: Path, params: SplitParams, skip_bad: bool,
                   progress: bool, skipped: list[str], strict: bool) -> list[_ImageTask]:
    image_dir, label_dir = src / "images", src / "labelTxt"
    if not image_dir.is_dir():
        raise DatasetLayoutError(image_dir, "image folder not found (expected <src>/images/ and "
                                 "<src>/labelTxt/ of the DOTA release)")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not images:
        raise DatasetLayoutError(image_dir, "no image file (.png, .jpg, .tif, ...) in the image "
                                 "folder; nothing was written")
    with_labels = label_dir.is_dir()
    tasks = []
    for image_path in tqdm(images, desc="DOTA labels", disable=not progress, unit="img"):
        label_path, objects = None, None
        if with_labels:
            label_path = label_dir / f"{image_path.stem}.txt"
            try:
                if not label_path.is_file():
                    raise AnnotationError(label_path, "label file not found")
                objects = tuple(parse_dota_txt(label_path))
            except DatasetError as err:
                if not skip_bad:
                    raise
                skipped.append(str(err))
                _forget_image(out, image_path.stem)
                continue
        tasks.append(_ImageTask(name=image_path.stem, image_path=str(image_path),
                                label_path=None if label_path is None else str(label_path),
                                objects=objects, out_dir=str(out), params=params,
                                strict=strict))
    return tasks


def _patches_to_coco(results: list[dict], size: int) -> CocoBuilder:
    coco = CocoBuilder(DOTA_CLASSES)
    for res in results:
        for patch in res["patches"]:
            image_id = coco.add_image(f"images/{patch['name']}.png", size, size)
            for label, difficult, _truncated, x1, y1, x2, y2 in patch["objects"]:
                w, h = round(x2 - x1, 2), round(y2 - y1, 2)
                coco.add_object(image_id, label, [x1, y1, w, h], round(w * h, 4),
                                difficult=difficult)
    return coco


def split_dota(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 1024,
    gap: int = 200,
    iof_thr: float = 0.7,
    nproc: int = 1,
    coco_json: str | os.PathLike | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    truncated: str = "polygon",
    strict: bool = False,
) -> dict:
    """Splits a DOTA v1.0 folder into patches (see the module docstring); resumable.

    Args:
        src: Folder with ``images/`` and (optionally) ``labelTxt/``.
        out: Output folder (``images/``, ``annfiles/``, ``.done/``, ``conversion_report.json``).
        size: Patch side in pixels.
        gap: Overlap of neighbouring patches in pixels.
        iof_thr: Minimum fraction of an object's area inside a patch to keep it there.
        nproc: Worker processes (images are split in parallel).
        coco_json: Also write a COCO json of the patches' horizontal boxes here
            (``file_name`` relative to ``out``, e.g. ``images/P0000__1024__0___0.png``).
        skip_bad: Skip (and list) images with a bad label file or unreadable image.
        progress: Show tqdm progress bars.
        truncated: ``'polygon'`` (MMRotate's convention, the default) or ``'rectangle'`` (this
            project's earlier one): how objects cut by a patch edge are written.
        strict: Stop at the first object that would be dropped (no area, or outside the image).

    Returns:
        Summary counts: ``images``, ``images_reused``, ``objects``, ``patches``,
        ``patches_written``, ``patches_reused``, ``patch_objects``, ``truncated``,
        ``degenerate_dropped``, ``objects_dropped``, ``repaired_objects`` (one line per dropped
        object), ``skipped`` (list of messages), ``coco_json``, ``report``.

    Raises:
        DatasetLayoutError: No image folder or no image in it, or every image skipped.
        DatasetError: A malformed label file (file and line), a missing label file or an
            unreadable image, unless ``skip_bad``.
    """
    params = SplitParams(size=size, gap=gap, iof_thr=iof_thr, truncated=truncated)
    src, out = Path(src), Path(out)
    # temporaries of files whose write a killed run interrupted
    remove_stale_temporaries(out, out / "images", out / "annfiles", out / _DONE_DIR,
                             *([Path(coco_json).parent] if coco_json is not None else []))
    skipped: list[str] = []
    tasks = _collect_tasks(src, out, params, skip_bad, progress, skipped, strict)
    results = []
    for index, res, error in run_tasks(_split_image, tasks, nproc=nproc, desc="DOTA split",
                                       unit="img", progress=progress, ordered=False,
                                       single_thread_opencv=True):
        if error is None:
            results.append(res)
        elif skip_bad:
            skipped.append(str(error))
            _forget_image(out, tasks[index].name)
        else:
            raise error
    if not results:
        raise DatasetLayoutError(src / "images", f"every image was skipped (first: "
                                 f"{skipped[0]}); no patch, json or report was written")
    results.sort(key=lambda r: r["name"])
    all_patches = [p for r in results for p in r["patches"]]
    entries = [e for r in results for e in r["dropped"]]
    summary = {
        "out_dir": str(out),
        "images": len(results),
        "images_reused": sum(r["image_reused"] for r in results),
        "objects": sum(r["num_objects"] for r in results),
        "patches": len(all_patches),
        "patches_written": sum(r["patches_written"] for r in results),
        "patches_reused": sum(r["patches_reused"] for r in results),
        "patch_objects": sum(len(p["objects"]) for p in all_patches),
        "truncated": sum(o[2] for p in all_patches for o in p["objects"]),
        "degenerate_dropped": sum(r["num_degenerate"] for r in results),
        "objects_dropped": len(entries),
        "repaired_objects": [describe(e) for e in entries],
        "skipped": skipped,
        "coco_json": None if coco_json is None else str(coco_json),
    }
    if coco_json is not None:
        atomic_write_json(coco_json, _patches_to_coco(results, params.size).to_dict())
    report = {"tool": "DOTA split", "src": str(src), "params": asdict(params),
              "strict": strict, "skip_bad": skip_bad, "images": summary["images"],
              "patches": summary["patches"], "skipped": skipped, "objects": entries}
    report_path = out / REPORT_NAME
    if _read_marker(report_path) != report:  # unchanged: left alone (a rerun touches nothing)
        write_report(out, report)
    summary["report"] = str(report_path)
    return summary
