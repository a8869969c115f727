"""Markdown report of a finished DS2D2 recipe, with its figures.

:func:`write_report` writes ``<work_root>/report.md`` and PNG figures under
``<work_root>/report/``:

- the metrics table of the teacher, the student baseline, the distilled student and the
  high-frequency amplifier (a component of the method, listed but not a competitor), the
  training time of each stage, the total time, the exported student and one plain sentence on the
  measured outcome (distilled minus baseline, AP50 and AP);
- ``curves.png``: task losses of the baseline and the distilled student, and each distillation
  term of the distilled run (mmengine's ``vis_data/scalars.json``);
- ``spectral.png``: one validation image with its boxes, the teacher's first FPN level, its Haar
  sub-bands LL / LH / HL / HH and the DISW map of the image's boxes on the sub-band grid;
- the deployment section (when the pipeline ran ``ds2d2-deploy``): ONNX Runtime parity, AP and
  per-image latency of PyTorch fp32, ONNX Runtime fp32 and INT8;
- ``detections.png``: ground truth, baseline and distilled detections on a few validation images.

Each figure is drawn by its own function. A figure that fails leaves a note with the error in the
report instead of its image, so a long pipeline never loses its table. Every file is written
atomically (:mod:`ds2d2_mm.utils.io`: temporary file in the destination folder, then
``os.replace``).

The parts, one job each: :mod:`.table` (metrics table, outcome sentence), :mod:`.curves`
(training curves from the scalars), :mod:`.samples` (validation images, models loaded for
inference), :mod:`.figures` (spectral sub-bands and DISW, detections side by side) and
:mod:`.images` (image, figure and PNG helpers); this module assembles the report and exports the
public names.

Models are loaded and run by mmdet's ``DetInferencer`` (its test pipeline, weights and device
handling; :mod:`ds2d2_mm.tooling.multiband_view` extends it to ``LoadMultiBandImage``
pipelines); boxes are drawn by mmdet's ``DetLocalVisualizer`` into image arrays, on an RGB
picture of the input (1-band images in grey, 3 or more bands as a composite of the first three:
:mod:`ds2d2_mm.tooling.multiband_view`). The curves and the spectral panels are
``matplotlib.figure.Figure`` objects rendered by the Agg canvas directly, which needs no display
and leaves pyplot's global backend and state untouched.

Tooling: the pipeline (:mod:`ds2d2_mm.tooling.pipeline`) calls :func:`write_report`; the report
only reads the ``RunResult`` records of :mod:`ds2d2_mm.tooling.runs` and never imports the
pipeline.
"""

from __future__ import annotations

import datetime
import logging
import os
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ...utils.io import atomic_write_text
from .curves import LOG_SCALE_RATIO, load_scalars, plot_curves
from .figures import DEFAULT_SCORE_THR, plot_detections, plot_spectral
from .samples import DEFAULT_NUM_IMAGES, ValSample, load_val_samples, resolve_path
from .table import (
    AMPLIFIER_NOTE,
    ROWS,
    format_duration,
    metrics_table,
    outcome_sentence,
    train_time,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..runs import RunResult


__all__ = [
    "DEFAULT_SCORE_THR",
    "ValSample",
    "format_duration",
    "load_scalars",
    "load_val_samples",
    "metrics_table",
    "outcome_sentence",
    "plot_curves",
    "plot_detections",
    "plot_spectral",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.md"
FIGURE_DIR = "report"
CURVES_PNG = "curves.png"
SPECTRAL_PNG = "spectral.png"
DETECTIONS_PNG = "detections.png"
#: Lines of a failed figure's traceback quoted in the report.
TRACEBACK_LINES = 12


def _figure_section(title: str, draw: Callable[[], Path], work_root: Path,
                    caption: str) -> list[str]:
    """Markdown for one figure: the image and caption, or a note with the error if it failed."""
    try:
        path = draw()
    except Exception as exc:  # noqa: BLE001 - a figure must never cost the report
        logger.warning("report: %s figure failed: %s", title, exc, exc_info=True)
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        tail = "".join(tb).rstrip().splitlines()[-TRACEBACK_LINES:]
        return [f"> **The {title} figure could not be drawn**: `{type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}`", "",
                "```text", *tail, "```"]
    rel = os.path.relpath(path, work_root)
    return [f"![{title}]({Path(rel).as_posix()})", "", caption]


def _run_path(run: RunResult | None) -> str:
    if run is None or run.checkpoint is None:
        return "-"
    return f"`{run.checkpoint}`"


def write_report(work_root: str | os.PathLike, runs: Mapping[str, RunResult], elapsed_s: float,
                 student_export: str | os.PathLike, *, data_root: str | os.PathLike | None = None,
                 score_thr: float = DEFAULT_SCORE_THR, num_images: int = DEFAULT_NUM_IMAGES,
                 device: str = "cpu", deployment: Mapping | None = None) -> Path:
    """Write ``<work_root>/report.md`` and its figures under ``<work_root>/report/``.

    Args:
        work_root: The pipeline's work root.
        runs: ``RunResult`` by name: ``teacher``, ``amplifier``, ``baseline``, ``distilled``
            (the distilled metrics are those of the exported student in the baseline config).
        elapsed_s: Total elapsed time of the pipeline.
        student_export: The exported distilled student checkpoint (plain student weights).
        data_root: Overrides the baseline config's dataset root for the figures' images.
        score_thr: Score threshold of the detections figure.
        num_images: Validation images in the detections figure.
        device: Device for the figures' inference.
        deployment: The summary of the deployment stage (``ds2d2-deploy``'s ``deploy.json``):
            adds its section (parity, AP and latency of PyTorch fp32, ONNX Runtime fp32 and
            INT8).

    Returns:
        Path of ``report.md``. The table is always written; a figure that fails is replaced by a
        note with its error.
    """
    root = Path(work_root)
    fig_dir = root / FIGURE_DIR
    student_export = Path(student_export)
    teacher, baseline = runs.get("teacher"), runs.get("baseline")
    distilled = runs.get("distilled")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")

    lines = [f"# DS2D2 report: `{root}`", "", f"Written {now}.", ""]
    lines += ["## Validation metrics (COCO bbox, %)", "", metrics_table(runs), "",
              "The distilled student is evaluated as exported (student weights only) in the "
              "student baseline config, exactly as a user would deploy it.", "",
              AMPLIFIER_NOTE, ""]
    lines += ["## Outcome", "",
              outcome_sentence(baseline.metrics if baseline else None,
                               distilled.metrics if distilled else None), ""]
    lines += ["## Time and files", "",
              f"- Total elapsed time of the pipeline: {format_duration(elapsed_s)}"]
    for key, label in ROWS:
        run = runs.get(key)
        if run is not None:
            name = label.split(" \u2020")[0]
            lines.append(f"- {name}: training {train_time(run)}, "
                         f"checkpoint {_run_path(run)}")
    lines += [f"- Exported distilled student: `{student_export}`", ""]
    if deployment is not None:
        from ...apis.deploy.report import markdown_section

        lines += markdown_section(deployment)
    report = root / REPORT_NAME
    # the table first, so that even a hard crash while drawing keeps it
    atomic_write_text(report, "\n".join([*lines, "_Figures are being drawn._"]) + "\n")

    # figures: each one on its own, never at the table's expense
    samples: list[ValSample] | None = None
    samples_error: Exception | None = None
    if baseline is not None:
        try:
            samples = load_val_samples(baseline.config, data_root, max(1, num_images))
        except Exception as exc:  # noqa: BLE001 - reported in the figures that need them
            samples_error = exc

    def need_samples() -> list[ValSample]:
        if samples is None:
            raise samples_error or ValueError("no baseline run, so no validation config")
        return samples

    def curves() -> Path:
        base = load_scalars(resolve_path(baseline.work_dir)) if baseline else []
        dist = load_scalars(resolve_path(distilled.work_dir)) if distilled else []
        return plot_curves(base, dist, fig_dir / CURVES_PNG)

    def spectral() -> Path:
        if teacher is None:
            raise ValueError("no teacher run")
        # an image of the teacher's own validation set: a cross-modal teacher reads other files
        # (another modality) than the students whose images the detections figure shows
        sample = load_val_samples(teacher.config, data_root, 1)[0]
        return plot_spectral(teacher.config, teacher.checkpoint, sample, fig_dir / SPECTRAL_PNG,
                             device)

    def detections() -> Path:
        if baseline is None:
            raise ValueError("no baseline run")
        return plot_detections(baseline.config,
                               {"baseline": baseline.checkpoint, "distilled": student_export},
                               need_samples(), fig_dir / DETECTIONS_PNG, score_thr, device)

    lines += ["## Training curves", ""]
    lines += _figure_section("training curves", curves, root,
                             "Task losses of the student baseline and the distilled student "
                             "(same schedule), and each distillation term of the distilled run "
                             "(explicit stream `loss_exp_*`, implicit stream `loss_imp_*`). "
                             "Log y axis where the values span more than "
                             f"{LOG_SCALE_RATIO:g}x.")
    lines += ["", "## Spectral decomposition of the teacher's features", ""]
    lines += _figure_section("spectral", spectral, root,
                             "A validation image with its ground-truth boxes, the teacher's first "
                             "FPN level and its one-level Haar sub-bands (mean absolute "
                             "activation over channels), and the DISW map of the image's boxes "
                             "on the sub-band grid (1 + each covering box's 1 / area in cells).")
    lines += ["", "## Detections", ""]
    lines += _figure_section("detections", detections, root,
                             f"Ground truth, student baseline and distilled student on "
                             f"{num_images} validation images; detections with score >= "
                             f"{score_thr:g}.")
    atomic_write_text(report, "\n".join(lines).rstrip() + "\n")
    return report
