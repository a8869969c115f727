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
- ``detections.png``: ground truth, baseline and distilled detections on a few validation images.

Each figure is drawn by its own function. A figure that fails leaves a note with the error in the
report instead of its image, so a long pipeline never loses its table. Every file is written
atomically (temporary file in the destination folder, then ``os.replace``).

Models are loaded and run by mmdet's ``DetInferencer`` (its test pipeline, weights and device
handling; :mod:`.multiband_view` extends it to ``LoadMultiBandImage`` pipelines); boxes are drawn
by mmdet's ``DetLocalVisualizer`` into image arrays, on an RGB picture of the input (1-band
images in grey, 3 or more bands as a composite of the first three: :mod:`.multiband_view`). The
curves and the spectral panels are ``matplotlib.figure.Figure`` objects rendered by the Agg
canvas directly, which needs no display and leaves pyplot's global backend and state untouched.

Tooling: the pipeline (:mod:`.pipeline`) calls :func:`write_report`; this module only reads the
``RunResult`` records of :mod:`.runs` and never imports the pipeline.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..utils.io import atomic_open, atomic_write_bytes, atomic_write_text
from .multiband_view import inferencer_class, read_display_image
from .runs import REPO

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from mmdet.apis import DetInferencer
    from mmdet.visualization import DetLocalVisualizer
    from torch import nn

    from .runs import RunResult

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

#: Detections below this score are not drawn.
DEFAULT_SCORE_THR = 0.3
#: Validation images (rows) of the detections figure.
DEFAULT_NUM_IMAGES = 3
#: Resolution of the saved figures.
FIGURE_DPI = 110
#: Images with drawn boxes are scaled so that their longer side has this many pixels.
PANEL_SIDE = 384
#: Detections figure: pixels between panels, title strip height, its font scale and margin.
PANEL_GAP = 6
TITLE_HEIGHT = 22
TITLE_FONT_SCALE, MIN_TITLE_FONT_SCALE = 0.45, 0.25
TITLE_MARGIN = 4
#: Line width of drawn boxes (DetLocalVisualizer's ``line_width``).
BOX_LINE_WIDTH = 2
#: A positive curve whose max / min exceeds this ratio is drawn on a log y axis.
LOG_SCALE_RATIO = 30.0
#: Lines of a failed figure's traceback quoted in the report.
TRACEBACK_LINES = 12
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

#: Prefixes of the distiller's distillation terms (``loss_exp_low``, ``loss_imp_full_cls``, ...).
DISTILL_PREFIXES = ("loss_exp", "loss_imp", "distill.")
TOTAL_LOSS_KEY = "loss"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _resolve(path: str | os.PathLike) -> Path:
    """An existing path as given (relative to the working directory), else relative to the repo.

    The pipeline's configs and data roots are relative to the repository root, while the report
    may be written from another working directory.
    """
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    repo_path = REPO / p
    return repo_path if repo_path.exists() else p


def _save_figure(fig: Figure, path: Path) -> Path:
    """Render ``fig`` with Agg into ``path`` (PNG) atomically; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=FIGURE_DPI)
    return path


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


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


# --------------------------------------------------------------------------------------------
# Table and outcome
# --------------------------------------------------------------------------------------------


def _train_time(run: RunResult) -> str:
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
        cells = [label, *(_pct(_metric(run.metrics, col)) for col in columns), _train_time(run),
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


# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------


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
    fig = _new_figure(4.2 * ncols, 3.0 * nrows)
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
    return _save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Validation samples and models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValSample:
    """One validation image and its ground truth (original pixel coordinates)."""

    image_id: int
    path: Path
    boxes: np.ndarray  # (k, 4) x1, y1, x2, y2
    labels: list[str] = field(default_factory=list)


def _dataset_cfg(cfg: Any) -> Any:
    """The innermost dataset of the config's test dataloader (unwrapping dataset wrappers)."""
    ds = cfg.test_dataloader.dataset
    while "ann_file" not in ds:
        if "dataset" in ds:
            ds = ds.dataset
        elif "datasets" in ds:
            ds = ds.datasets[0]
        else:
            raise KeyError("test_dataloader.dataset has no ann_file (nor a wrapped dataset)")
    return ds


def load_val_samples(config: str | os.PathLike, data_root: str | os.PathLike | None = None,
                     limit: int = DEFAULT_NUM_IMAGES) -> list[ValSample]:
    """The first ``limit`` validation images (by id) that have boxes, from the config's COCO json.

    Args:
        config: Detector config whose ``test_dataloader`` names the COCO json and image folder.
        data_root: Overrides the config's ``data_root``.
        limit: Number of images; images without boxes are used only when too few have boxes.

    Raises:
        FileNotFoundError: the annotation file or an image is missing (names the path).
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(_resolve(config)))
    ds = _dataset_cfg(cfg)
    root = _resolve(data_root if data_root is not None else ds.get("data_root", "") or ".")
    ann = Path(ds.ann_file)
    ann = ann if ann.is_absolute() else root / ann
    if not ann.is_file():
        raise FileNotFoundError(f"validation annotations not found: {ann} (from "
                                f"test_dataloader.dataset of {config}); generate or point "
                                "data_root at the dataset")
    coco = json.loads(ann.read_text(encoding="utf-8"))
    prefix = (ds.get("data_prefix") or {}).get("img", "") or ""
    names = {c["id"]: c.get("name", str(c["id"])) for c in coco.get("categories", [])}
    by_image: dict[int, list[dict]] = {}
    for a in coco.get("annotations", []):
        by_image.setdefault(a["image_id"], []).append(a)
    images = sorted(coco.get("images", []), key=lambda im: im["id"])
    images.sort(key=lambda im: not by_image.get(im["id"]))  # stable: images with boxes first
    samples = []
    for im in images[:limit]:
        # file_name may be relative to data_root or to the image prefix
        candidates = [root / prefix / im["file_name"], root / im["file_name"]]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"validation image {im['file_name']!r} of {ann} not found "
                                    f"(tried {', '.join(map(str, candidates))})")
        anns = by_image.get(im["id"], [])
        boxes = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)],
                           dtype=np.float32).reshape(-1, 4)
        labels = [names.get(a["category_id"], str(a["category_id"])) for a in anns]
        samples.append(ValSample(int(im["id"]), path, boxes, labels))
    if not samples:
        raise ValueError(f"{ann} lists no images")
    return samples


def _inferencer(config: str | os.PathLike, checkpoint: str | os.PathLike | None,
                device: str) -> DetInferencer:
    """mmdet's ``DetInferencer`` of ``config`` with ``checkpoint``: the model, loaded, and its test
    pipeline (image path in, packed inputs out).

    Raises:
        FileNotFoundError: no checkpoint, or the file is missing (names the path).
    """
    import warnings

    from mmengine.config import Config

    if checkpoint is None:
        raise FileNotFoundError(f"no checkpoint for {config}")
    ckpt = _resolve(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    cfg = Config.fromfile(str(_resolve(config)))
    with warnings.catch_warnings():
        # class names come from the config (_class_names), not from the inferencer's COCO
        # fallback for a checkpoint without dataset_meta
        warnings.filterwarnings("ignore", message="dataset_meta or class names are not saved")
        # the config's visualizer backends get no save_dir: nothing is saved, as intended
        warnings.filterwarnings("ignore", message="Failed to add <class")
        # an explicit palette keeps the inferencer from building the test dataset
        return inferencer_class()(model=cfg, weights=str(ckpt), device=device,
                                  scope=cfg.get("default_scope", "mmdet"), palette="random",
                                  show_progress=False)


def _dataset_classes(model: nn.Module) -> tuple[list[str], list[tuple[int, int, int]]] | None:
    """Class names and palette of the model's test dataset (config metainfo, else the dataset
    class's ``METAINFO``), or ``None`` when neither names classes."""
    from mmdet.registry import DATASETS

    try:
        ds = _dataset_cfg(model.cfg)
        sources = [ds.get("metainfo") or {}, getattr(DATASETS.get(ds.type), "METAINFO", {}) or {}]
    except (KeyError, AttributeError):
        return None
    for meta in sources:
        if meta.get("classes"):
            return list(meta["classes"]), [tuple(c) for c in meta.get("palette") or []]
    return None


def _class_names(model: nn.Module, num_classes: int | None = None) -> list[str] | None:
    """Class names of the model's dataset (config metainfo or dataset class), if known."""
    found = _dataset_classes(model)
    names = found[0] if found else (getattr(model, "dataset_meta", None) or {}).get("classes")
    if names is not None and num_classes is not None and len(names) != num_classes:
        return None
    return list(names) if names is not None else None


# --------------------------------------------------------------------------------------------
# Drawing boxes: mmdet's DetLocalVisualizer into image arrays
# --------------------------------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    """An RGB uint8 picture of the image at ``path``, whatever its band count."""
    return read_display_image(path)


def _box_visualizer(classes: Sequence[str],
                    palette: Sequence[tuple[int, int, int]] = ()) -> DetLocalVisualizer:
    """A ``DetLocalVisualizer`` whose colours follow ``classes`` (the dataset's palette where it
    has one, mmdet's fixed random palette for the rest), so a class keeps its colour in every
    panel."""
    from mmdet.visualization import DetLocalVisualizer, get_palette

    colors = list(palette)[:len(classes)]
    colors += get_palette("random", len(classes))[len(colors):]
    vis = DetLocalVisualizer(name="ds2d2_report", line_width=BOX_LINE_WIDTH)
    vis.dataset_meta = {"classes": tuple(classes), "palette": colors}
    return vis


def _draw_instances(vis: DetLocalVisualizer, image: np.ndarray, boxes: np.ndarray,
                    labels: Sequence[str], scores: Sequence[float] | None = None) -> np.ndarray:
    """``image`` (RGB) with ``boxes`` drawn by ``vis``: ground truth when ``scores`` is None, else
    detections with their scores (all of them: the caller thresholds). Returns the RGB array."""
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    index = {name: i for i, name in enumerate(vis.dataset_meta["classes"])}
    instances = InstanceData(
        bboxes=torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)),
        labels=torch.as_tensor([index[name] for name in labels], dtype=torch.long))
    sample = DetDataSample()
    if scores is None:
        sample.gt_instances = instances
    else:
        instances.scores = torch.as_tensor(list(scores), dtype=torch.float32)
        sample.pred_instances = instances
    vis.add_datasample("report", image, sample, draw_gt=scores is None,
                       draw_pred=scores is not None, pred_score_thr=-math.inf)
    return vis.get_image()


def _panel_scale(image: np.ndarray) -> float:
    """Scale that brings an image's longer side to ``PANEL_SIDE`` pixels."""
    return PANEL_SIDE / max(image.shape[:2])


def _rescale(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    return cv2.resize(image, size, interpolation=interp)


def _titled(panel: np.ndarray, title: str) -> np.ndarray:
    """``panel`` under a white strip holding ``title`` (shrunk to the panel's width)."""
    import cv2

    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    size = TITLE_FONT_SCALE
    while size > MIN_TITLE_FONT_SCALE and cv2.getTextSize(
            title, font, size, thickness)[0][0] > panel.shape[1] - 2 * TITLE_MARGIN:
        size *= 0.9
    strip = np.full((TITLE_HEIGHT, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, title, (TITLE_MARGIN, TITLE_HEIGHT - 7), font, size, (0, 0, 0), thickness,
                cv2.LINE_AA)
    return np.concatenate([strip, panel], axis=0)


def _grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """RGB panels in rows and columns on a white background, ``PANEL_GAP`` pixels apart."""
    heights = [max(p.shape[0] for p in row) for row in rows]
    widths = [max(row[c].shape[1] for row in rows if c < len(row))
              for c in range(max(len(row) for row in rows))]
    out = np.full((sum(heights) + PANEL_GAP * (len(rows) + 1),
                   sum(widths) + PANEL_GAP * (len(widths) + 1), 3), 255, dtype=np.uint8)
    y = PANEL_GAP
    for row, height in zip(rows, heights, strict=True):
        x = PANEL_GAP
        for panel, width in zip(row, widths, strict=False):
            out[y:y + panel.shape[0], x:x + panel.shape[1]] = panel
            x += width + PANEL_GAP
        y += height + PANEL_GAP
    return out


def _save_rgb(image: np.ndarray, path: Path) -> Path:
    """Write an RGB array to ``path`` (PNG) atomically; returns ``path``."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f"cannot encode {path.name} as PNG")
    atomic_write_bytes(path, data.tobytes())
    return path


# --------------------------------------------------------------------------------------------
# Spectral figure
# --------------------------------------------------------------------------------------------


def _show_map(fig: Figure, ax: Axes, data: np.ndarray, title: str, cmap: str = "viridis") -> None:
    im = ax.imshow(data, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_spectral(config: str | os.PathLike, checkpoint: str | os.PathLike | None,
                  sample: ValSample, out: Path, device: str = "cpu") -> Path:
    """One image, the teacher's first FPN level, its Haar sub-bands and the image's DISW map.

    The image goes through the teacher's test pipeline (``DetInferencer``'s) and data
    preprocessor; ``extract_feat`` gives the FPN levels. Maps show the mean absolute activation
    over channels. The DISW map is computed for the image's boxes (scaled to the network input) on
    the sub-band grid.
    """
    import torch

    from ..models.layers.disw import disw_weights
    from ..models.layers.spectral import haar_dwt

    inferencer = _inferencer(config, checkpoint, device)
    model = inferencer.model
    data = inferencer.pipeline(str(sample.path))
    with torch.no_grad():
        batch = model.data_preprocessor(
            {"inputs": [data["inputs"]], "data_samples": [data["data_samples"]]}, False)
        feats = model.extract_feat(batch["inputs"])
        level = feats[0].float()  # (1, C, h, w)
        low, high = haar_dwt(level)  # (1, C, h2, w2), (1, C, 3, h2, w2)
        meta = batch["data_samples"][0].metainfo
        input_hw = tuple(int(v) for v in batch["inputs"].shape[-2:])
        sx, sy = (float(v) for v in meta.get("scale_factor", (1.0, 1.0)))
        boxes = torch.as_tensor(sample.boxes, dtype=torch.float32) * torch.tensor(
            [sx, sy, sx, sy])
        weights = disw_weights([boxes.to(level.device)], input_hw, tuple(low.shape[-2:]))

    def mean_abs(t: torch.Tensor) -> np.ndarray:
        return t.abs().mean(dim=0).cpu().numpy()

    image = _read_rgb(sample.path)
    found = _dataset_classes(model)
    classes = list(dict.fromkeys([*(found[0] if found else []), *sample.labels]))
    vis = _box_visualizer(classes, found[1] if found else ())
    fig = _new_figure(13.0, 6.4)
    axes = fig.subplots(2, 4)
    ax = axes[0, 0]
    scale = _panel_scale(image)  # drawn at panel size, so labels keep a readable size
    drawn = _draw_instances(vis, _rescale(image, scale), np.asarray(sample.boxes) * scale,
                            sample.labels)
    ax.imshow(drawn, extent=(0, image.shape[1], image.shape[0], 0))
    ax.set_title(f"image {sample.path.name}, {len(sample.boxes)} boxes", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    stride = input_hw[0] / level.shape[-2]
    _show_map(fig, axes[0, 1], mean_abs(level[0]),
              f"teacher FPN level 0 (stride {stride:g}), mean |.|")
    disw = weights[0, 0].cpu().numpy()
    _show_map(fig, axes[0, 2], disw, f"DISW on the sub-band grid (max {disw.max():.2f})",
              cmap="magma")
    ax = axes[0, 3]
    ax.imshow(image)
    weighted = np.ma.masked_where(disw <= 1.0, disw)  # cells no box covers stay clear
    ax.imshow(weighted, cmap="magma", alpha=0.6, interpolation="nearest",
              vmin=1.0, vmax=max(float(disw.max()), 1.0 + 1e-6),
              extent=(0, input_hw[1] / sx, input_hw[0] / sy, 0))
    ax.set_xlim(0, image.shape[1])
    ax.set_ylim(image.shape[0], 0)
    ax.set_title("DISW over the image (cells with weight > 1)", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    bands = [("LL (low)", low[0]), ("LH (high along H)", high[0, :, 0]),
             ("HL (high along W)", high[0, :, 1]), ("HH (diagonal)", high[0, :, 2])]
    for ax, (name, band) in zip(axes[1], bands, strict=True):
        _show_map(fig, ax, mean_abs(band), f"Haar {name}, mean |.|")
    fig.suptitle("Teacher features of one validation image: spectral decomposition and DISW",
                 fontsize=10)
    return _save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Detections figure
# --------------------------------------------------------------------------------------------


def _detections(inferencer: DetInferencer, samples: Sequence[ValSample], score_thr: float,
                names: Sequence[str] | None) -> list[tuple[np.ndarray, list[str], list[float]]]:
    """Each sample's detections with score >= ``score_thr``: boxes, class names, scores."""
    result = inferencer([str(s.path) for s in samples], return_datasamples=True,
                        no_save_vis=True, no_save_pred=True)
    out = []
    for pred_sample in result["predictions"]:
        pred = pred_sample.pred_instances
        keep = pred.scores >= score_thr
        boxes = pred.bboxes[keep].cpu().numpy()
        labels = [names[i] if names and i < len(names) else str(i)
                  for i in pred.labels[keep].cpu().tolist()]
        out.append((boxes, labels, pred.scores[keep].cpu().tolist()))
    return out


def plot_detections(config: str | os.PathLike, checkpoints: Mapping[str, str | os.PathLike | None],
                    samples: Sequence[ValSample], out: Path, score_thr: float = DEFAULT_SCORE_THR,
                    device: str = "cpu") -> Path:
    """Ground truth and each checkpoint's detections, one row per image.

    Inference is mmdet's ``DetInferencer``; boxes are drawn by mmdet's ``DetLocalVisualizer``
    (one colour per class across the figure, detections labelled with their score in %). Each
    panel is titled; the first column's title names the image.

    Args:
        config: Detector config shared by the checkpoints (the student baseline config).
        checkpoints: Column title -> checkpoint (e.g. baseline, distilled student).
        samples: Validation images (rows).
        out: PNG path.
        score_thr: Detections below this score are not drawn.
        device: Inference device.
    """
    if not samples:
        raise ValueError("no validation images to draw")
    results = {}
    found = None
    for title, ckpt in checkpoints.items():
        inferencer = _inferencer(config, ckpt, device)
        model = inferencer.model
        found = found or _dataset_classes(model)
        names = _class_names(model, getattr(getattr(model, "bbox_head", None), "num_classes",
                                            None))
        results[title] = _detections(inferencer, samples, score_thr, names)
        del inferencer, model
    all_labels = [lab for s in samples for lab in s.labels]
    all_labels += [lab for res in results.values() for _, labels, _ in res for lab in labels]
    classes = list(dict.fromkeys([*(found[0] if found else []), *sorted(set(all_labels))]))
    vis = _box_visualizer(classes, found[1] if found else ())
    rows = []
    for row, sample in enumerate(samples):
        image = _read_rgb(sample.path)
        scale = _panel_scale(image)
        shown = _rescale(image, scale)
        columns = [(f"{sample.path.name}: ground truth ({len(sample.boxes)})", sample.boxes,
                    sample.labels, None)]
        columns += [(f"{title}: {len(res[row][0])} with score >= {score_thr:g}", *res[row])
                    for title, res in results.items()]
        rows.append([_titled(_draw_instances(vis, shown, np.asarray(boxes) * scale, labels,
                                             scores), title)
                     for title, boxes, labels, scores in columns])
    return _save_rgb(_grid(rows), out)


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


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
                 device: str = "cpu") -> Path:
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
            lines.append(f"- {name}: training {_train_time(run)}, "
                         f"checkpoint {_run_path(run)}")
    lines += [f"- Exported distilled student: `{student_export}`", ""]
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
        base = load_scalars(_resolve(baseline.work_dir)) if baseline else []
        dist = load_scalars(_resolve(distilled.work_dir)) if distilled else []
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
