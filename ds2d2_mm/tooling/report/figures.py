"""The report's model figures: the teacher's spectral sub-bands with the DISW map of one image,
and the ground truth beside each checkpoint's detections.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .images import (
    box_visualizer,
    draw_instances,
    new_figure,
    panel_grid,
    panel_scale,
    read_rgb,
    rescale,
    save_figure,
    save_rgb,
    titled,
)
from .samples import ValSample, build_inferencer, class_names, dataset_classes

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from mmdet.apis import DetInferencer

__all__ = ["DEFAULT_SCORE_THR", "plot_detections", "plot_spectral"]


#: Detections below this score are not drawn.
DEFAULT_SCORE_THR = 0.3


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

    from ...models.layers.disw import disw_weights
    from ...models.layers.spectral import haar_dwt

    inferencer = build_inferencer(config, checkpoint, device)
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

    image = read_rgb(sample.path)
    found = dataset_classes(model)
    classes = list(dict.fromkeys([*(found[0] if found else []), *sample.labels]))
    vis = box_visualizer(classes, found[1] if found else ())
    fig = new_figure(13.0, 6.4)
    axes = fig.subplots(2, 4)
    ax = axes[0, 0]
    scale = panel_scale(image)  # drawn at panel size, so labels keep a readable size
    drawn = draw_instances(vis, rescale(image, scale), np.asarray(sample.boxes) * scale,
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
    return save_figure(fig, out)


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
        inferencer = build_inferencer(config, ckpt, device)
        model = inferencer.model
        found = found or dataset_classes(model)
        names = class_names(model, getattr(getattr(model, "bbox_head", None), "num_classes",
                                           None))
        results[title] = _detections(inferencer, samples, score_thr, names)
        del inferencer, model
    all_labels = [lab for s in samples for lab in s.labels]
    all_labels += [lab for res in results.values() for _, labels, _ in res for lab in labels]
    classes = list(dict.fromkeys([*(found[0] if found else []), *sorted(set(all_labels))]))
    vis = box_visualizer(classes, found[1] if found else ())
    rows = []
    for row, sample in enumerate(samples):
        image = read_rgb(sample.path)
        scale = panel_scale(image)
        shown = rescale(image, scale)
        columns = [(f"{sample.path.name}: ground truth ({len(sample.boxes)})", sample.boxes,
                    sample.labels, None)]
        columns += [(f"{title}: {len(res[row][0])} with score >= {score_thr:g}", *res[row])
                    for title, res in results.items()]
        rows.append([titled(draw_instances(vis, shown, np.asarray(boxes) * scale, labels,
                                           scores), title)
                     for title, boxes, labels, scores in columns])
    return save_rgb(panel_grid(rows), out)
