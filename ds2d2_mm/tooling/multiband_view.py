"""The report's view of images with any band count: an RGB picture to draw boxes on, and mmdet's
``DetInferencer`` for test pipelines that load rasters with ``LoadMultiBandImage``.

Display rule (:func:`display_rgb`): one or two bands show the first band in grey; three or more
show the first three bands as red, green and blue (the R, G, B of an ``(R, G, B, NIR)`` raster:
true colour). Each shown band is stretched linearly between its 1st and 99th percentile, so
16-bit and float rasters (a SAR intensity with a few very bright targets) stay visible.
8-bit images with three bands are shown unchanged.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..datasets.raster import TIFF_SUFFIXES, read_raster

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mmdet.apis import DetInferencer

__all__ = ["display_rgb", "inferencer_class", "read_display_image"]

#: Percentiles mapped to 0 and 255 when a band is stretched for display.
STRETCH_PERCENTILES = (1.0, 99.0)
#: Test-pipeline loaders that read a file path into ``img`` and that DetInferencer cannot swap.
_RASTER_LOADERS = ("LoadMultiBandImage",)


def _stretch(band: np.ndarray) -> np.ndarray:
    """One band ``(H, W)`` of any real dtype to uint8, its percentiles to 0 and 255."""
    band = band.astype(np.float64)
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(finite, STRETCH_PERCENTILES)
    if hi <= lo:
        hi = lo + 1.0
    scaled = (np.nan_to_num(band, nan=lo) - lo) / (hi - lo) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def display_rgb(img: np.ndarray) -> np.ndarray:
    """An RGB uint8 picture ``(H, W, 3)`` of an image ``(H, W)`` or ``(H, W, C)`` (module rule)."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] < 1:
        raise ValueError(f"cannot display an image of shape {img.shape}")
    if img.shape[-1] == 3 and img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.shape[-1] < 3:
        grey = _stretch(img[..., 0])
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.stack([_stretch(img[..., c]) for c in range(3)], axis=-1)


def read_display_image(path: str | os.PathLike) -> np.ndarray:
    """The RGB uint8 picture ``(H, W, 3)`` of an image file: TIFF rasters through
    :func:`~ds2d2_mm.datasets.raster.read_raster` and :func:`display_rgb`, other files with
    OpenCV (a grey PNG shows grey).

    Raises:
        FileNotFoundError: the file is missing or cannot be decoded (names the path).
    """
    import cv2

    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"cannot read image {path}")
        return display_rgb(read_raster(path))
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if img.ndim == 3 and img.shape[-1] == 4:  # BGRA
        img = img[..., :3]
    if img.ndim == 3 and img.shape[-1] == 3:
        img = img[..., ::-1]  # BGR -> RGB
    return display_rgb(img)


def _as_results(item: str | dict) -> dict:
    """A raster loader's input: ``{'img_path': path}`` for a path."""
    if isinstance(item, (str, os.PathLike)):
        return {"img_path": str(item)}
    if isinstance(item, dict):
        return item
    raise TypeError(f"a multi-band test pipeline takes image paths, got {type(item).__name__} "
                    "(an in-memory array has no band layout to check)")


@functools.cache
def inferencer_class() -> type[DetInferencer]:
    """mmdet's ``DetInferencer``, extended to test pipelines whose loader is
    ``LoadMultiBandImage``: mmdet swaps ``LoadImageFromFile`` for its own loader and refuses any
    other; here a raster loader is kept and fed ``{'img_path': path}``."""
    from mmdet.apis import DetInferencer
    from mmengine.dataset import Compose

    class MultiBandDetInferencer(DetInferencer):
        """``DetInferencer`` that also runs ``LoadMultiBandImage`` test pipelines."""

        def _init_pipeline(self, cfg) -> Compose:
            pipeline_cfg = cfg.test_dataloader.dataset.pipeline
            first = str(pipeline_cfg[0].get("type", "")).split(".")[-1] if pipeline_cfg else ""
            if first not in _RASTER_LOADERS:
                return super()._init_pipeline(cfg)
            if "meta_keys" in pipeline_cfg[-1]:  # as mmdet does: no img_id at inference
                pipeline_cfg[-1]["meta_keys"] = tuple(
                    k for k in pipeline_cfg[-1]["meta_keys"] if k != "img_id")
            return Compose([_as_results, *pipeline_cfg])

    return MultiBandDetInferencer
