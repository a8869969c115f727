"""Image helpers of the report's figures: matplotlib figures rendered by Agg, boxes drawn by
mmdet's ``DetLocalVisualizer`` into RGB arrays, titled panels in a grid, PNG files written
atomically (:mod:`ds2d2_mm.utils.io`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...utils.io import atomic_open, atomic_write_bytes
from ..multiband_view import read_display_image

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure
    from mmdet.visualization import DetLocalVisualizer

__all__ = ["BOX_LINE_WIDTH", "FIGURE_DPI", "MIN_TITLE_FONT_SCALE", "PANEL_GAP", "PANEL_SIDE",
           "TITLE_FONT_SCALE", "TITLE_HEIGHT", "TITLE_MARGIN", "box_visualizer",
           "draw_instances", "new_figure", "panel_grid", "panel_scale", "read_rgb", "rescale",
           "save_figure", "save_rgb", "titled"]


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


def save_figure(fig: Figure, path: Path) -> Path:
    """Render ``fig`` with Agg into ``path`` (PNG) atomically; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=FIGURE_DPI)
    return path


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches with constrained layout, outside
    pyplot (no global state, no display)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def read_rgb(path: Path) -> np.ndarray:
    """An RGB uint8 picture of the image at ``path``, whatever its band count."""
    return read_display_image(path)


def box_visualizer(classes: Sequence[str],
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


def draw_instances(vis: DetLocalVisualizer, image: np.ndarray, boxes: np.ndarray,
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


def panel_scale(image: np.ndarray) -> float:
    """Scale that brings an image's longer side to ``PANEL_SIDE`` pixels."""
    return PANEL_SIDE / max(image.shape[:2])


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` (H, W, 3) resized by ``scale``: nearest-neighbour up, area-averaged down."""
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    return cv2.resize(image, size, interpolation=interp)


def titled(panel: np.ndarray, title: str) -> np.ndarray:
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


def panel_grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
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


def save_rgb(image: np.ndarray, path: Path) -> Path:
    """Write an RGB array to ``path`` (PNG) atomically; returns ``path``."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f"cannot encode {path.name} as PNG")
    atomic_write_bytes(path, data.tobytes())
    return path
