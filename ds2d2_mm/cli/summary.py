"""The data commands' output: the converters' summary dictionaries as plain text, and the run of
a converter as a command (its summary, or its error and exit code 1)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ds2d2_mm.utils.errors import DatasetError, DatasetLayoutError

__all__ = ["format_summary", "run_converter"]

_MAX_LISTED = 20


def _lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:" + (f" {len(item)}" if isinstance(item, list) else ""))
                out.extend(_lines(item, indent + 1))
            else:
                out.append(f"{pad}{key}: {len(item) if isinstance(item, list) else item}")
        return out
    if isinstance(value, list):
        shown = [f"{pad}- {item}" for item in value[:_MAX_LISTED]]
        if len(value) > _MAX_LISTED:
            shown.append(f"{pad}... and {len(value) - _MAX_LISTED} more")
        return shown
    return [f"{pad}{value}"]


def format_summary(title: str, summary: dict) -> str:
    """``title`` followed by the summary as an indented list (long lists are shortened)."""
    return "\n".join([title, *_lines(summary, 1)])


def run_converter(title: str, convert: Callable[[], dict], skipped: str = "images",
                  also: tuple[type[Exception], ...] = ()) -> int:
    """A converter run as a command: its summary on stdout and exit code 0, or one error on
    stderr and exit code 1.

    Args:
        title: First line of the printed summary.
        convert: Runs the conversion; returns its summary.
        skipped: What ``--skip-bad`` skips (``images``, ``pairs``), named in the hint printed
            after a ``DatasetError`` (a bad annotation or image file, which it names); a
            :class:`DatasetLayoutError` (a missing folder or list, an output with no image) is
            printed without the hint, as skipping files cannot help there.
        also: Further exceptions printed as a plain error line, without the hint.
    """
    try:
        summary = convert()
    except DatasetLayoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except DatasetError as err:
        print(f"error: {err}\n(use --skip-bad to skip such {skipped})", file=sys.stderr)
        return 1
    except also as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_summary(title, summary))
    return 0
