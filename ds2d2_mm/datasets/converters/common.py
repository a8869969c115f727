"""What the converters share: the worker pool, the COCO json, and the log of repaired objects.

- :func:`run_tasks`: one function over many tasks, in ``nproc`` worker processes (which die with
  a killed parent) or in this process, with a progress bar; a :class:`DatasetError` raised by a
  task comes back as a value, so the converter decides whether it stops the run (the default)
  or skips the file (``--skip-bad``).
- :class:`CocoBuilder`: images and annotations with consecutive ids, the categories of a class
  list; :func:`write_coco_files` writes several of them, and none when one holds no image.
- :func:`clip_box` and :class:`ObjectLog`: the per-object rule of the converters. A box is
  clipped to the image; one with no width or height left is dropped. Each such object is listed
  (file, line, object index, what was done); ``strict`` makes the first dropped object stop the
  run instead. :func:`write_report` writes the lists next to the output.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from ...utils.errors import AnnotationError, DatasetError
from ...utils.io import atomic_write_json
from ..classes import coco_categories

__all__ = [
    "REPORT_NAME",
    "CocoBuilder",
    "ObjectLog",
    "clip_box",
    "describe",
    "die_with_parent",
    "run_tasks",
    "write_coco_files",
    "write_report",
]

T = TypeVar("T")
R = TypeVar("R")

#: Linux prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
#: File name of the report a converter writes next to its output.
REPORT_NAME = "conversion_report.json"


# ------------------------------------------------------------------------------------------------
# worker pool
# ------------------------------------------------------------------------------------------------
def die_with_parent() -> None:
    """Make the calling process (a pool worker) get SIGTERM when its parent dies, so that a
    killed converter leaves no workers writing behind it. Linux only; elsewhere a no-op."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - non-glibc Linux
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _init_worker(parent: int, single_thread_opencv: bool) -> None:
    if single_thread_opencv:  # one process per core already
        import cv2

        cv2.setNumThreads(1)
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


@dataclass(frozen=True)
class _Catching:
    """``func`` on ``(index, task)``, returning ``(index, result, None)`` or, when it raises a
    :class:`DatasetError`, ``(index, None, error)`` (picklable: ``func`` is module-level)."""

    func: Callable[[Any], Any]

    def __call__(self, item: tuple[int, Any]) -> tuple[int, Any, DatasetError | None]:
        index, task = item
        try:
            return index, self.func(task), None
        except DatasetError as err:
            return index, None, err


def run_tasks(
    func: Callable[[T], R],
    tasks: Sequence[T],
    nproc: int = 1,
    desc: str = "",
    unit: str = "it",
    progress: bool = True,
    chunksize: int = 1,
    ordered: bool = True,
    single_thread_opencv: bool = False,
) -> Iterator[tuple[int, R | None, DatasetError | None]]:
    """``func`` over ``tasks``: yields ``(task index, result, None)`` or ``(task index, None,
    error)`` for a task that raised a :class:`DatasetError`.

    Args:
        func: A module-level function (it is pickled to the workers).
        tasks: The tasks.
        nproc: Worker processes; 1 (or a single task) runs in this process.
        desc, unit, progress: The tqdm progress bar.
        chunksize: Tasks sent to a worker at a time.
        ordered: Results in the order of ``tasks`` (otherwise as they finish).
        single_thread_opencv: Limit OpenCV to one thread in each worker.
    """
    items = list(enumerate(tasks))
    bar = dict(total=len(items), desc=desc, disable=not progress, unit=unit)
    catching = _Catching(func)
    if nproc > 1 and len(items) > 1:
        with Pool(min(nproc, len(items)), initializer=_init_worker,
                  initargs=(os.getpid(), single_thread_opencv)) as pool:
            mapper = pool.imap if ordered else pool.imap_unordered
            yield from tqdm(mapper(catching, items, chunksize=chunksize), **bar)
    else:
        yield from tqdm(map(catching, items), **bar)


# ------------------------------------------------------------------------------------------------
# COCO json
# ------------------------------------------------------------------------------------------------
class CocoBuilder:
    """A COCO detection json under construction: ids from 1, categories from ``classes``.

    Args:
        classes: Class names; category ``i + 1`` is ``classes[i]``.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add_image(self, file_name: str, width: int, height: int) -> int:
        """Adds an image; returns its id."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "width": width,
                            "height": height})
        return image_id

    def add_object(self, image_id: int, label: int, bbox: Sequence[float], area: float,
                   **extra: Any) -> None:
        """Adds an annotation: 0-based ``label``, ``bbox`` ``[x, y, w, h]``, then ``extra`` keys
        (``difficult``, ``segmentation``, ...) after ``iscrowd``."""
        self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                 "category_id": label + 1, "bbox": list(bbox), "area": area,
                                 "iscrowd": 0, **extra})

    def to_dict(self) -> dict:
        """The json content: ``images``, ``annotations``, ``categories``."""
        return {"images": self.images, "annotations": self.annotations,
                "categories": coco_categories(self.classes)}


def write_coco_files(files: dict[str | os.PathLike, CocoBuilder], why_empty: str = "") -> None:
    """Writes every ``path: builder`` pair (atomically), or none of them when one holds no
    image.

    Raises:
        DatasetError: Naming the first json that would hold no image (and ``why_empty``).
    """
    for path, coco in files.items():
        if not coco.images:
            raise DatasetError(path, "no image to write: nothing was converted and no file "
                               f"was written{'; ' + why_empty if why_empty else ''}")
    for path, coco in files.items():
        atomic_write_json(path, coco.to_dict())


# ------------------------------------------------------------------------------------------------
# the per-object rule and its log
# ------------------------------------------------------------------------------------------------
def clip_box(box: Sequence[float], width: float, height: float
             ) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """``(xmin, ymin, xmax, ymax)`` clipped to ``[0, width] x [0, height]``.

    Returns:
        ``(box, None)`` when it was inside; ``(clipped, 'clipped ...')`` when part of it was
        outside; ``(None, reason)`` when no width or height is left (a box written with
        ``xmin >= xmax`` or ``ymin >= ymax``, or one outside the image).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        if x2 == x1 and y2 == y1:
            what = "zero size"
        elif x2 == x1:
            what = "zero width (xmin = xmax)"
        elif y2 == y1:
            what = "zero height (ymin = ymax)"
        else:
            what = "xmax < xmin or ymax < ymin"
        return None, f"box {_fmt_box(box)} has {what}"
    c1, d1, c2, d2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if c2 <= c1 or d2 <= d1:
        return None, f"box {_fmt_box(box)} lies outside the {width:g}x{height:g} image"
    if (c1, d1, c2, d2) != (x1, y1, x2, y2):
        return (c1, d1, c2, d2), (f"box {_fmt_box(box)} crosses the edge of the "
                                  f"{width:g}x{height:g} image")
    return (x1, y1, x2, y2), None


def _fmt_box(box: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in box) + ")"


@dataclass
class ObjectLog:
    """The objects of one file that were repaired or dropped.

    Each entry is a dict: ``file``, ``line`` (of the object, 1-based; ``None`` where unknown),
    ``object`` (1-based index among the file's objects), ``problem``, ``action``
    (``'clipped'`` or ``'dropped'``), and ``to`` (the repaired geometry) for a clipped one.

    Args:
        strict: Raise at the first object that would be dropped instead of listing it.
    """

    strict: bool = False
    entries: list[dict] = field(default_factory=list)

    def clipped(self, path: str | os.PathLike, line: int | None, index: int, problem: str,
                to: Iterable[float]) -> None:
        """Records a repaired object."""
        self.entries.append({"file": str(path), "line": line, "object": index,
                             "problem": problem, "action": "clipped",
                             "to": [round(float(v), 2) for v in to]})

    def dropped(self, path: str | os.PathLike, line: int | None, index: int,
                problem: str) -> None:
        """Records a dropped object, or (``strict``) raises.

        Raises:
            AnnotationError: With ``strict``, naming the file, line and problem.
        """
        if self.strict:
            raise AnnotationError(path, f"object {index}: {problem} (without --strict such an "
                                  "object is dropped and listed)", line=line)
        self.entries.append({"file": str(path), "line": line, "object": index,
                             "problem": problem, "action": "dropped"})

    def count(self, action: str) -> int:
        """How many entries have ``action``."""
        return sum(e["action"] == action for e in self.entries)


def describe(entry: dict) -> str:
    """One line of the summary: ``file:line: object N: problem: action``."""
    where = entry["file"] if entry.get("line") is None else f"{entry['file']}:{entry['line']}"
    action = entry["action"]
    if action == "clipped" and "to" in entry:
        action = f"clipped to {_fmt_box(entry['to'])}"
    return f"{where}: object {entry['object']}: {entry['problem']}: {action}"


def write_report(out_dir: str | os.PathLike, report: dict) -> Path:
    """Writes ``report`` as ``<out_dir>/conversion_report.json`` (atomically); returns the path."""
    path = Path(out_dir) / REPORT_NAME
    atomic_write_json(path, report, indent=1)
    return path
