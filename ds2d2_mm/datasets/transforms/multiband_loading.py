"""``LoadMultiBandImage``: an mmdet loading transform for TIFF / GeoTIFF rasters of any band count.

The file is read with tifffile, not rasterio: tifffile is pure Python + numpy (a small wheel),
rasterio needs the GDAL native libraries, and detection needs the pixel values only
(:mod:`ds2d2_mm.datasets.raster` gives the layout rule: ``(H, W)``, ``(H, W, C)`` and
``(C, H, W)`` files all become ``(H, W, C)``).

The transform sets ``img`` ``(H, W, C)``, ``img_shape`` and ``ori_shape`` ``(H, W)`` as mmcv's
``LoadImageFromFile`` does, so mmdet's ``Resize``, ``RandomFlip``, ``RandomCrop`` and
``PackDetInputs`` work unchanged with C channels. mmcv's resize is ``cv2.resize``, which handles
any channel count up to OpenCV's limit (measured: 128 channels with opencv-python 5.0.0; 1 to
128 bands resize exactly as each band resized alone, every interpolation, uint8 / uint16 /
float32); beyond it cv2 raises, and a warning at loading says so (keep fewer bands with
``bands=``). A one-band image comes back from ``cv2.resize`` as ``(H, W)``; ``PackDetInputs``
adds the channel axis again.

Normalisation belongs to the data preprocessor: mmengine's ``ImgDataPreprocessor`` accepts 1 or
3 mean values only, so C-band models use ``MultiBandDetDataPreprocessor``
(:mod:`ds2d2_mm.models.data_preprocessors.multiband_preprocessor`) with ``mean``/``std`` of C values
or the JSON of ``ds2d2-band-stats`` (``stats_file=``), and no channel swap (``bgr_to_rgb=False``).

Example pipeline (4 bands, 16-bit, nodata 0)::

    train_pipeline = [
        dict(type='LoadMultiBandImage', expected_bands=4, nodata=0,
             fill='data/s2/band_stats.json'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(800, 800), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from ...utils.errors import ImageError
from ..band_statistics import read_band_stats
from ..raster import nodata_mask, read_raster, select_bands

__all__ = ["LoadMultiBandImage", "band_stats", "cv2_resizes"]


def band_stats(path: str | os.PathLike) -> tuple[list[float], list[float]]:
    """Per-band ``(mean, std)`` lists from the JSON that ``ds2d2-band-stats`` writes.

    In a config, prefer ``MultiBandDetDataPreprocessor(stats_file=path)`` (mmengine's config
    parser refuses ``import`` statements in plain configs); in Python code
    ``mean, std = band_stats(path)``.
    """
    return read_band_stats(path)


@functools.cache
def cv2_resizes(channels: int) -> bool:
    """Whether ``cv2.resize`` (mmcv's resize backend) accepts ``channels`` channels."""
    import cv2

    try:
        cv2.resize(np.zeros((2, 2, channels), np.float32), (1, 1))
    except cv2.error:
        return False
    return True


@TRANSFORMS.register_module()
class LoadMultiBandImage(BaseTransform):
    """Load a TIFF / GeoTIFF raster with any number of bands.

    Required keys: ``img_path``. Added keys: ``img`` ``(H, W, C)``, ``img_shape``, ``ori_shape``
    ``(H, W)``, and with ``nodata`` set, ``nodata_mask`` ``(H, W, C)`` bool (True where a band's
    value was ``nodata``; at the raster's resolution, geometric transforms do not change it).

    Args:
        bands: Raster band indices to keep, in this order (``None``: all). An index outside the
            raster's bands is an error naming the file, the index and the band count.
        expected_bands: Band count every raster must have (before ``bands`` selects), or
            ``None``. Another count is an error naming the file and both counts.
        nodata: Value marking missing data (NaN allowed), or ``None``. Such values are replaced
            by ``fill`` and flagged in ``nodata_mask``; a raster (after band selection) with
            nodata everywhere is an error naming the file.
        fill: Replacement of nodata values, per kept band: a sequence of C values, one number,
            a ``ds2d2-band-stats`` JSON path (its ``mean``), or ``None`` (0). The dataset mean
            makes filled values 0 after the preprocessor's normalisation.
        to_float32: Convert ``img`` to float32 (default); otherwise keep the file's dtype.
        backend_args: mmengine file backend arguments, as in ``LoadImageFromFile``.
    """

    def __init__(self, bands: Sequence[int] | None = None, expected_bands: int | None = None,
                 nodata: float | None = None,
                 fill: float | Sequence[float] | str | os.PathLike | None = None,
                 to_float32: bool = True, backend_args: dict | None = None) -> None:
        self.bands = None if bands is None else [int(b) for b in bands]
        if self.bands is not None and not self.bands:
            raise ValueError("LoadMultiBandImage: bands=[] keeps no band; use None for all")
        self.expected_bands = None if expected_bands is None else int(expected_bands)
        if self.expected_bands is not None and self.expected_bands < 1:
            raise ValueError(f"LoadMultiBandImage: expected_bands={expected_bands} must be >= 1")
        self.nodata = None if nodata is None else float(nodata)
        if isinstance(fill, (str, os.PathLike)):
            fill = read_band_stats(fill)[0]
        self.fill = None if fill is None else np.atleast_1d(np.asarray(fill, np.float64))
        if self.fill is not None and self.fill.ndim != 1:
            raise ValueError(f"LoadMultiBandImage: fill must be a number or a list of one value "
                             f"per band, got shape {self.fill.shape}")
        kept = len(self.bands) if self.bands is not None else self.expected_bands
        if kept is not None and self.fill is not None and len(self.fill) not in (1, kept):
            raise ValueError(f"LoadMultiBandImage: fill has {len(self.fill)} values for "
                             f"{kept} bands")
        self.to_float32 = to_float32
        self.backend_args = None if backend_args is None else dict(backend_args)

    def transform(self, results: dict) -> dict:
        """Read ``results['img_path']``; see the class docstring for the keys set."""
        path = results["img_path"]
        img = read_raster(path, self.backend_args)
        count = img.shape[-1]
        if self.expected_bands is not None and count != self.expected_bands:
            raise ImageError(path, f"the raster has {count} bands but the config expects "
                             f"{self.expected_bands} (expected_bands)")
        img = select_bands(img, self.bands, path)
        mask = nodata_mask(img, self.nodata)  # on the file's values, before any conversion
        if self.to_float32:
            img = img.astype(np.float32)
        if mask is not None:
            if mask.all():
                raise ImageError(path, f"every value of the raster is nodata ({self.nodata:g}); "
                                 "leave the file out of the annotations")
            img = self._filled(img, mask, path)
            results["nodata_mask"] = mask
        img = np.ascontiguousarray(img)
        if not cv2_resizes(img.shape[-1]):
            warnings.warn(f"{path}: {img.shape[-1]} bands are more than cv2.resize (mmcv's "
                          "Resize) handles; keep fewer with bands=", stacklevel=2)
        results["img"] = img
        results["img_shape"] = img.shape[:2]
        results["ori_shape"] = img.shape[:2]
        return results

    def _filled(self, img: np.ndarray, mask: np.ndarray, path: str) -> np.ndarray:
        """``img`` ``(H, W, C)`` with its masked values replaced by ``fill`` (0 by default)."""
        count = img.shape[-1]
        fill = np.zeros(count) if self.fill is None else self.fill
        if len(fill) not in (1, count):
            raise ImageError(path, f"fill has {len(fill)} values but {count} bands are kept")
        fill = np.broadcast_to(fill, (count,))
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            fill = np.clip(np.rint(fill), info.min, info.max)
        return np.where(mask, fill.astype(img.dtype), img)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(bands={self.bands}, expected_bands={self.expected_bands}"
                f", nodata={self.nodata}, fill={None if self.fill is None else self.fill.tolist()}"
                f", to_float32={self.to_float32}, backend_args={self.backend_args})")
