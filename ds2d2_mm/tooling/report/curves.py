"""Training curves of the report, from mmengine's ``vis_data/scalars.json`` of each run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .images import new_figure, save_figure

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = ["DISTILL_PREFIXES", "LOG_SCALE_RATIO", "TOTAL_LOSS_KEY", "load_scalars",
           "plot_curves"]


#: A positive curve whose max / min exceeds this ratio is drawn on a log y axis.
LOG_SCALE_RATIO = 30.0
#: Prefixes of the distiller's distillation terms (``loss_exp_low``, ``loss_imp_full_cls``, ...).
DISTILL_PREFIXES = ("loss_exp", "loss_imp", "distill.")
TOTAL_LOSS_KEY = "loss"


def _read_json_lines(path: Path) -> list[dict]:
    """JSON objects of a JSON-lines file; malformed lines (e.g. a truncated last one) skipped."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def load_scalars(work_dir: str | os.PathLike) -> list[dict]:
    """Training records of a run from mmengine's ``<work_dir>/<timestamp>/vis_data/scalars.json``.

    The newest timestamp folder that has the file wins; when it starts later than step 0 (a
    resumed run), older folders fill in the steps before its first one. Only training records
    (those with ``'loss'`` and ``'step'``) are kept, sorted by step.

    Returns:
        Records (dicts of scalars), possibly empty when no file exists.
    """
    folders = sorted((p.parents[1] for p in Path(work_dir).glob("*/vis_data/scalars.json")),
                     key=lambda p: p.name, reverse=True)
    records: list[dict] = []
    first_step = math.inf
    for folder in folders:  # newest first
        train = [r for r in _read_json_lines(folder / "vis_data" / "scalars.json")
                 if TOTAL_LOSS_KEY in r and isinstance(r.get("step"), (int, float))]
        older = [r for r in train if r["step"] < first_step]
        if older:
            records = older + records
            first_step = min(r["step"] for r in older)
    return sorted(records, key=lambda r: r["step"])


def _is_distill_key(key: str) -> bool:
    return key.startswith(DISTILL_PREFIXES)


def _task_keys(records: Sequence[dict]) -> list[str]:
    keys = {k for r in records for k in r if k.startswith("loss_") and not _is_distill_key(k)}
    return sorted(keys)


def _distill_keys(records: Sequence[dict]) -> list[str]:
    return sorted({k for r in records for k in r if _is_distill_key(k)})


def _series(records: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], float(r[key])) for r in records
           if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pts, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def _task_total(records: Sequence[dict], keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the task loss terms per record (records missing a term are skipped)."""
    pts = [(r["step"], sum(float(r[k]) for k in keys)) for r in records
           if keys and all(isinstance(r.get(k), (int, float)) for k in keys)]
    if not pts:
        return np.zeros(0), np.zeros(0)
    arr = np.asarray(pts, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def _maybe_log(ax: Axes, values: Sequence[np.ndarray]) -> None:
    """Log y axis when every value is positive and they span more than ``LOG_SCALE_RATIO``."""
    vals = np.concatenate([v for v in values if v.size]) if any(v.size for v in values) else None
    if vals is None or vals.min() <= 0:
        return
    if vals.max() / vals.min() > LOG_SCALE_RATIO:
        ax.set_yscale("log")


def plot_curves(baseline_records: Sequence[dict], distilled_records: Sequence[dict],
                out: Path) -> Path:
    """Training curves: task losses of both students, each distillation term on its own.

    Panels: the task loss (sum of the student's ``loss_*`` task terms) of the baseline and the
    distilled student, each task term of both, then each distillation term of the distilled run
    (``loss_exp_*``, ``loss_imp_*``). X axis: training iteration.

    Raises:
        ValueError: when neither run has training records.
    """
    if not baseline_records and not distilled_records:
        raise ValueError("no training records (vis_data/scalars.json) for the baseline or the "
                         "distilled student")
    task = sorted(set(_task_keys(baseline_records)) | set(_task_keys(distilled_records)))
    distill = _distill_keys(distilled_records)
    panels: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]] = []
    runs = (("student baseline", baseline_records), ("distilled student", distilled_records))
    panels.append(("task loss (sum of " + " + ".join(task) + ")" if task else "task loss",
                   [(name, *_task_total(recs, [k for k in task if any(k in r for r in recs)]))
                    for name, recs in runs]))
    for key in task:
        panels.append((key, [(name, *_series(recs, key)) for name, recs in runs]))
    for key in distill:
        panels.append((f"{key} (distilled run)", [("distilled student",
                                                    *_series(distilled_records, key))]))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(4.2 * ncols, 3.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = {"student baseline": "tab:blue", "distilled student": "tab:orange"}
    for ax, (title, lines) in zip(axes, panels, strict=False):
        drawn = [(name, x, y) for name, x, y in lines if x.size]
        for name, x, y in drawn:
            ax.plot(x, y, label=name, color=colors[name], linewidth=1.2)
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        _maybe_log(ax, [y for _, _, y in drawn])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        if len(drawn) > 1:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return save_figure(fig, out)
