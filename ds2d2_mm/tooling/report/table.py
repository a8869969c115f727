"""The report's metrics table and its one-sentence outcome (distilled minus baseline).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..runs import RunResult

__all__ = ["ALWAYS_SHOWN", "AMPLIFIER_NOTE", "METRIC_COLUMNS", "PERCENT", "ROWS",
           "UNDEFINED_METRIC", "format_duration", "metrics_table", "outcome_sentence",
           "train_time"]


#: CocoMetric's value for a metric with no ground truth in its range.
UNDEFINED_METRIC = -1.0
#: Fractions are shown as percentages.
PERCENT = 100.0

#: (column, CocoMetric key). AP, AP50 and APs are always shown; the others when any run has them.
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("AP", "coco/bbox_mAP"),
    ("AP50", "coco/bbox_mAP_50"),
    ("AP75", "coco/bbox_mAP_75"),
    ("APs", "coco/bbox_mAP_s"),
    ("APm", "coco/bbox_mAP_m"),
    ("APl", "coco/bbox_mAP_l"),
)
ALWAYS_SHOWN = ("AP", "AP50", "APs")
_METRIC_KEY = dict(METRIC_COLUMNS)

#: (run key, row label), in table order.
ROWS: tuple[tuple[str, str], ...] = (
    ("teacher", "Teacher"),
    ("baseline", "Student baseline"),
    ("distilled", "Distilled student (DS2D2)"),
    ("amplifier", "High-frequency amplifier \u2020 (on high-frequency features)"),
)
AMPLIFIER_NOTE = (
    "\u2020 The high-frequency amplifier is the detection head of the implicit stream, trained "
    "and evaluated on the teacher's high-frequency features (LH + HL + HH of each FPN level) with "
    "the teacher's backbone and neck frozen. It is a component of the method, listed for "
    "reference, not a competitor of the students."
)


def format_duration(seconds: float | None) -> str:
    """Human-readable duration: ``"12.3 s"``, ``"4 min 05 s"``, ``"2 h 03 min"``, or ``"-"``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _metric(metrics: Mapping[str, Any] | None, column: str) -> float | None:
    """A metric as a fraction, or ``None`` when absent or undefined (CocoMetric's -1)."""
    if not metrics:
        return None
    key = _METRIC_KEY[column]
    value = metrics.get(key, metrics.get(key.split("/", 1)[-1]))
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value <= UNDEFINED_METRIC:
        return None
    return value


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * PERCENT:.1f}"


def train_time(run: RunResult) -> str:
    """A stage's training time; stages skipped because they finished before were not timed."""
    if run.train_seconds is not None:
        return format_duration(run.train_seconds)
    return "reused (trained before)" if run.checkpoint is not None else "-"


def _shown_columns(runs: Mapping[str, RunResult]) -> list[str]:
    present = {col for run in runs.values() for col, key in METRIC_COLUMNS
               if run.metrics and (key in run.metrics or key.split("/", 1)[-1] in run.metrics)}
    return [col for col, _ in METRIC_COLUMNS if col in ALWAYS_SHOWN or col in present]


def metrics_table(runs: Mapping[str, RunResult]) -> str:
    """Markdown table: one row per run (teacher, baseline, distilled, amplifier), in %.

    Metrics are COCO bbox values in percent with one decimal; ``n/a`` where a run has no value
    (missing, or -1 for a size range without ground truth). AP75 / APm / APl appear when any run
    has them. The last columns are the training time and the config.
    """
    columns = _shown_columns(runs)
    header = ["Model", *columns, "Training time", "Config"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":--", *["--:"] * len(columns), "--:", ":--"]) + "|"]
    for key, label in ROWS:
        run = runs.get(key)
        if run is None:
            continue
        cells = [label, *(_pct(_metric(run.metrics, col)) for col in columns), train_time(run),
                 f"`{run.config}`"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _signed(points: float) -> str:
    return f"{points:+.1f}"


def outcome_sentence(baseline: Mapping[str, Any] | None,
                     distilled: Mapping[str, Any] | None) -> str:
    """One plain statement of the measured outcome: distilled minus baseline, AP50 and AP.

    Differences are in percentage points rounded to one decimal, as in the table; the distilled
    student "beats" the baseline only when both rounded differences are positive. Otherwise the
    sentence says plainly that it does not.
    """
    values = {}
    for col in ("AP50", "AP"):
        base, dist = _metric(baseline, col), _metric(distilled, col)
        if base is None or dist is None:
            missing = [name for name, v in (("baseline", base), ("distilled student", dist))
                       if v is None]
            return (f"The outcome cannot be measured: no {col} value for the "
                    f"{' and the '.join(missing)}.")
        values[col] = (base, dist, round((dist - base) * PERCENT, 1))
    parts = [f"{col} {_signed(diff)} points ({_pct(base)} -> {_pct(dist)})"
             for col, (base, dist, diff) in values.items()]
    measured = "Distilled student minus student baseline: " + ", ".join(parts) + "."
    ahead = [col for col, (_, _, diff) in values.items() if diff > 0]
    behind = [col for col, (_, _, diff) in values.items() if diff <= 0]
    if not behind:
        verdict = "The distilled student beats the student baseline on both AP50 and AP."
    elif not ahead:
        verdict = ("The distilled student does not beat the student baseline: it is not ahead "
                   "on AP50 or on AP in this run.")
    else:
        verdict = (f"The distilled student does not beat the student baseline on "
                   f"{' or '.join(behind)}; it is ahead only on {' and '.join(ahead)}.")
    return f"{measured} {verdict}"
