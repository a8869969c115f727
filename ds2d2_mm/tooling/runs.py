"""What the pipeline, its report and the benchmark share: a trained run and the checkout root.

Kept apart so that :mod:`.report` and :mod:`.pipeline` need not import each other (the pipeline
calls the report; the report only reads ``RunResult``s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPO", "RunResult"]

#: The checkout (or installed package's parent) that the shipped relative paths refer to.
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunResult:
    """One trained model of the recipe and what is known about it."""

    name: str
    config: str
    work_dir: Path
    checkpoint: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float | None = None
