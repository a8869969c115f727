"""Reading and writing DOTA label files (``x1 y1 x2 y2 x3 y3 x4 y4 class difficult``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...utils.errors import AnnotationError
from ..classes import DOTA_CLASSES, ClassIndex

__all__ = ["DOTA_HEADER_KEYS", "DotaObject", "format_dota_line", "parse_dota_txt"]

#: Optional header lines of the official label files (``imagesource:GoogleEarth``, ``gsd:0.1``).
DOTA_HEADER_KEYS = ("imagesource", "gsd")
_NUM_FIELDS = 10  # 8 coordinates, class name, difficult


@dataclass(frozen=True)
class DotaObject:
    """One oriented object: 4 corners ``(x1, y1, ..., x4, y4)``, 0-based label, difficult flag."""

    poly: tuple[float, ...]
    label: int
    difficult: int
    line: int = 0


def _is_header(line: str) -> bool:
    key, sep, _ = line.partition(":")
    return bool(sep) and key.strip().lower() in DOTA_HEADER_KEYS


def parse_dota_txt(
    path: str | os.PathLike, classes: Sequence[str] = DOTA_CLASSES
) -> list[DotaObject]:
    """Parses one DOTA label file; ``imagesource:``/``gsd:`` headers and blank lines are skipped.

    Class names are matched case-insensitively and ignoring surrounding spaces.

    Raises:
        AnnotationError: A line without exactly 10 fields, a non-numeric coordinate or difficult
            flag, or an unknown class, naming the file and the 1-based line.
    """
    index = ClassIndex(classes)
    objects = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip() or _is_header(line):
                continue
            fields = line.split()
            if len(fields) != _NUM_FIELDS:
                raise AnnotationError(
                    path,
                    f"expected {_NUM_FIELDS} fields 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult', "
                    f"got {len(fields)}: {line.strip()!r}",
                    line=line_no,
                )
            try:
                poly = tuple(float(v) for v in fields[:8])
            except ValueError:
                raise AnnotationError(path, f"non-numeric coordinate in {line.strip()!r}",
                                      line=line_no) from None
            label = index.get(fields[8])
            if label is None:
                raise AnnotationError(
                    path, f"unknown class {fields[8]!r}; expected one of {', '.join(classes)}",
                    line=line_no,
                )
            try:
                difficult = int(fields[9])
            except ValueError:
                raise AnnotationError(path, f"difficult flag is not an integer: {fields[9]!r}",
                                      line=line_no) from None
            objects.append(DotaObject(poly=poly, label=label, difficult=difficult, line=line_no))
    return objects


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_dota_line(poly: Iterable[float], class_name: str, difficult: int) -> str:
    """One DOTA label line (no newline); coordinates with at most 2 decimals."""
    return " ".join([*(_fmt(v) for v in poly), class_name, str(int(difficult))])
