"""Plain-text rendering of the converters' summary dictionaries (the data commands' output)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_summary"]

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
