"""What the report's figures draw from: validation images with their boxes (from a config's
COCO json), and trained models through mmdet's ``DetInferencer``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..multiband_view import inferencer_class
from ..runs import REPO

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mmdet.apis import DetInferencer
    from torch import nn

__all__ = ["DEFAULT_NUM_IMAGES", "ValSample", "build_inferencer", "class_names",
           "dataset_classes", "load_val_samples", "resolve_path"]


#: Validation images (rows) of the detections figure.
DEFAULT_NUM_IMAGES = 3


def resolve_path(path: str | os.PathLike) -> Path:
    """An existing path as given (relative to the working directory), else relative to the repo.

    The pipeline's configs and data roots are relative to the repository root, while the report
    may be written from another working directory.
    """
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    repo_path = REPO / p
    return repo_path if repo_path.exists() else p


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

    cfg = Config.fromfile(str(resolve_path(config)))
    ds = _dataset_cfg(cfg)
    root = resolve_path(data_root if data_root is not None else ds.get("data_root", "") or ".")
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


def build_inferencer(config: str | os.PathLike, checkpoint: str | os.PathLike | None,
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
    ckpt = resolve_path(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    cfg = Config.fromfile(str(resolve_path(config)))
    with warnings.catch_warnings():
        # class names come from the config (class_names), not from the inferencer's COCO
        # fallback for a checkpoint without dataset_meta
        warnings.filterwarnings("ignore", message="dataset_meta or class names are not saved")
        # the config's visualizer backends get no save_dir: nothing is saved, as intended
        warnings.filterwarnings("ignore", message="Failed to add <class")
        # an explicit palette keeps the inferencer from building the test dataset
        return inferencer_class()(model=cfg, weights=str(ckpt), device=device,
                                  scope=cfg.get("default_scope", "mmdet"), palette="random",
                                  show_progress=False)


def dataset_classes(model: nn.Module) -> tuple[list[str], list[tuple[int, int, int]]] | None:
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


def class_names(model: nn.Module, num_classes: int | None = None) -> list[str] | None:
    """Class names of the model's dataset (config metainfo or dataset class), if known."""
    found = dataset_classes(model)
    names = found[0] if found else (getattr(model, "dataset_meta", None) or {}).get("classes")
    if names is not None and num_classes is not None and len(names) != num_classes:
        return None
    return list(names) if names is not None else None
