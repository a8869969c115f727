"""Reading multi-band TIFF / GeoTIFF rasters into ``(H, W, C)`` arrays with :mod:`tifffile`.

Why tifffile and not rasterio: tifffile is pure Python on top of numpy (a small wheel, no native
library), while rasterio needs GDAL's shared libraries; the loader needs pixel values only (no
georeferencing, no reprojection), which tifffile reads from any baseline TIFF or GeoTIFF, tiled or
striped, compressed with what tifffile decodes itself (deflate, LZW, packbits; JPEG-2000, LERC
and friends need the optional ``imagecodecs`` package).

Layout rule (:func:`to_hwc`): the band axis comes from the axes string tifffile derives from the
file's tags, never guessed from the sizes:

* ``YX`` (one band): ``(H, W)`` -> ``(H, W, 1)``;
* ``YXS`` (``PlanarConfiguration=1``, pixel-interleaved samples, GDAL's ``INTERLEAVE=PIXEL``):
  already ``(H, W, C)``;
* ``SYX`` (``PlanarConfiguration=2``, band-sequential samples, GDAL's ``INTERLEAVE=BAND``) and
  multi-page stacks (``QYX``, ``IYX``, ``CYX``, ``ZYX``: one band per page, as tifffile writes a
  ``(C, H, W)`` array with ``photometric='minisblack'``): ``(C, H, W)`` -> ``(H, W, C)``.

Singleton axes are dropped first; more than one non-spatial axis (e.g. time x bands) is an error.
A ``(H, W, C)`` array written by tifffile as ``minisblack`` *without* ``planarconfig='contig'`` is
stored as H pages of ``(W, C)`` images and reads as H bands: write such arrays with
``planarconfig='contig'`` (or ``'separate'`` for ``(C, H, W)``); ``expected_bands`` in
:class:`~ds2d2_mm.datasets.transforms.multiband_loading.LoadMultiBandImage` catches the mistake.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np

from ..utils.errors import ImageError

__all__ = ["TIFF_SUFFIXES", "check_complete", "decode_tiff", "nodata_mask", "read_raster",
           "select_bands", "to_hwc"]

#: File name endings read as rasters by the band statistics tool.
TIFF_SUFFIXES = (".tif", ".tiff")

#: tifffile axis letters of the two spatial axes and of the pixel-interleaved samples axis.
_SPATIAL, _SAMPLES_LAST = "YX", "S"


def _tifffile():
    """The tifffile module, or an :class:`ImportError` that says how to install it."""
    try:
        import tifffile
    except ImportError as err:  # pragma: no cover - tifffile is a runtime requirement
        raise ImportError("reading multi-band rasters needs tifffile: pip install tifffile "
                          "(requirements/runtime.txt)") from err
    return tifffile


def to_hwc(array: np.ndarray, axes: str, path: str | os.PathLike) -> np.ndarray:
    """Put the band axis last, following tifffile's ``axes`` (see the module docstring).

    Args:
        array: The series as tifffile returns it, e.g. ``(H, W)``, ``(H, W, C)``, ``(C, H, W)``.
        axes: tifffile's axis letters of ``array``, one per dimension (``'YXS'``, ``'SYX'``...).
        path: The file, for error messages.

    Returns:
        ``(H, W, C)``, C >= 1 (a view where possible).
    """
    if len(axes) != array.ndim:
        raise ImageError(path, f"tifffile axes {axes!r} do not match the array shape "
                         f"{array.shape}")
    keep = [i for i, (size, ax) in enumerate(zip(array.shape, axes, strict=True))
            if size != 1 or ax in _SPATIAL]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if axes == _SPATIAL:
        return array[..., None]
    if len(axes) != 3 or _SPATIAL not in axes:
        raise ImageError(path, f"unsupported TIFF layout: axes {axes!r}, shape {array.shape}; "
                         "expected one band (YX), pixel-interleaved bands (YXS) or band-"
                         "sequential bands (SYX, or one band per page)")
    if axes.endswith(_SAMPLES_LAST) and axes.startswith(_SPATIAL):
        return array
    if axes.endswith(_SPATIAL):
        return np.moveaxis(array, 0, -1)
    raise ImageError(path, f"unsupported TIFF layout: axes {axes!r}, shape {array.shape}")


def check_complete(tif, size: int, path: str | os.PathLike) -> None:
    """Raise :class:`ImageError` when a strip or tile of the first series lies past the end of
    the file (a truncated download or copy), which tifffile may otherwise read as zeros.

    Args:
        tif: An open ``tifffile.TiffFile``.
        size: The file's size in bytes.
        path: The file, for error messages.
    """
    for page in tif.series[0].pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        for offset, count in zip(offsets, counts, strict=False):
            if count and offset + count > size:
                raise ImageError(path, f"truncated TIFF: image data up to byte {offset + count} "
                                 f"but the file has {size} bytes; copy or download it again")


def decode_tiff(data: bytes, path: str | os.PathLike) -> np.ndarray:
    """Decode the first image series of TIFF ``data`` into ``(H, W, C)`` (file's dtype).

    Raises:
        ImageError: An unreadable, truncated or unsupported file, naming ``path``.
    """
    tifffile = _tifffile()
    if not data:
        raise ImageError(path, "empty file")
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if not tif.series:
                raise ImageError(path, "no image in the TIFF file")
            check_complete(tif, len(data), path)
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
    except ImageError:
        raise
    except Exception as err:  # tifffile.TiffFileError, struct.error, ValueError, zlib.error...
        raise ImageError(path, f"cannot read as TIFF ({type(err).__name__}: {err})") from err
    return to_hwc(array, axes, path)


def read_raster(path: str | os.PathLike, backend_args: dict | None = None) -> np.ndarray:
    """Read a TIFF / GeoTIFF into ``(H, W, C)`` with the file's dtype.

    Args:
        path: Local path or any URI mmengine's file backends read.
        backend_args: mmengine ``backend_args`` (as in mmcv's ``LoadImageFromFile``).

    Raises:
        ImageError: A missing, unreadable, truncated or unsupported file, naming it.
    """
    from mmengine import fileio

    try:
        data = fileio.get(str(path), backend_args=backend_args)
    except Exception as err:
        raise ImageError(path, f"cannot open ({type(err).__name__}: {err})") from err
    return decode_tiff(data, path)


def select_bands(img: np.ndarray, bands: Sequence[int] | None,
                 path: str | os.PathLike) -> np.ndarray:
    """Keep ``bands`` of ``img`` ``(H, W, C)``, in that order (``None``: all).

    Raises:
        ImageError: An index outside ``[-C, C)``, naming the file, the index and C.
    """
    if bands is None:
        return img
    count = img.shape[-1]
    for index in bands:
        if not -count <= int(index) < count:
            raise ImageError(path, f"band index {index} is out of range: the raster has "
                             f"{count} bands (indices 0..{count - 1})")
    return img[..., [int(i) for i in bands]]


def nodata_mask(img: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Boolean ``(H, W, C)`` mask of the values equal to ``nodata`` (NaN matches NaN), or
    ``None`` when ``nodata`` is ``None``."""
    if nodata is None:
        return None
    nodata = float(nodata)
    if np.isnan(nodata):
        if np.issubdtype(img.dtype, np.floating):
            return np.isnan(img)
        return np.zeros(img.shape, bool)
    if not _representable(nodata, img.dtype):
        return np.zeros(img.shape, bool)
    return img == img.dtype.type(nodata)


def _representable(value: float, dtype: np.dtype) -> bool:
    """Whether ``value`` is exactly a value of ``dtype`` (a nodata of -9999 never occurs in a
    uint8 raster, and must not wrap around to another value)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return True
