"""Streaming per-band mean and standard deviation of a set of rasters, and reading them back.

:class:`BandStatsAccumulator` takes one ``(H, W, C)`` image at a time and keeps, per band, only
the count of valid values, their mean and the sum of squared deviations ``M2`` (float64): each
image's own ``(n, mean, M2)`` is computed in two passes over that image and merged into the
running totals with Chan et al.'s pairwise update (the parallel form of Welford's algorithm),

    n = n_a + n_b,  d = mean_b - mean_a,  mean = mean_a + d n_b / n,
    M2 = M2_a + M2_b + d^2 n_a n_b / n,

which stays exact to float64 rounding whatever the number of pixels (no ``E[x^2] - E[x]^2``
cancellation for 16-bit data with a large mean). ``std = sqrt(M2 / n)``: the population standard
deviation (numpy's default ``ddof=0``), over every valid value of the dataset. Values equal to
``nodata`` are left out band by band.

The JSON that ``ds2d2-band-stats`` writes::

    {"bands": C, "mean": [C floats], "std": [C floats], "count": pixels read,
     "valid": [C ints, values used per band], "files": n, "nodata": value or null,
     "band_indices": [raster band indices] or null}

:func:`read_band_stats` reads it back as ``(mean, std)``; the data preprocessor
(``MultiBandDetDataPreprocessor(stats_file=...)``) and ``LoadMultiBandImage(fill=<json path>)``
take the file directly.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from ..utils.errors import DatasetError

__all__ = ["BandStatsAccumulator", "read_band_stats"]


class BandStatsAccumulator:
    """Running per-band count, mean and M2 (float64) over ``(H, W, C)`` images.

    Args:
        nodata: Value left out of the statistics (NaN allowed), or ``None``.
    """

    def __init__(self, nodata: float | None = None) -> None:
        self.nodata = nodata
        self.bands: int | None = None
        self.files = 0
        self.pixels = 0
        self.n: np.ndarray | None = None  # (C,) int64
        self.mean: np.ndarray | None = None  # (C,) float64
        self.m2: np.ndarray | None = None  # (C,) float64

    def update(self, img: np.ndarray, path: str | os.PathLike = "?") -> None:
        """Add one image ``(H, W, C)`` (any real dtype); ``path`` names it in errors."""
        from .raster import nodata_mask

        if img.ndim == 2:
            img = img[..., None]
        count = img.shape[-1]
        if self.bands is None:
            self.bands = count
            self.n = np.zeros(count, np.int64)
            self.mean = np.zeros(count, np.float64)
            self.m2 = np.zeros(count, np.float64)
        elif count != self.bands:
            raise DatasetError(path, f"{count} bands, but the files before it have "
                               f"{self.bands}")
        x = img.reshape(-1, count).astype(np.float64)
        mask = nodata_mask(img, self.nodata)
        valid = np.ones_like(x, bool) if mask is None else ~mask.reshape(-1, count)
        n_b = valid.sum(0)
        mean_b = np.where(valid, x, 0.0).sum(0) / np.maximum(n_b, 1)
        dev = np.where(valid, x - mean_b, 0.0)
        m2_b = (dev * dev).sum(0)
        n_a, mean_a = self.n, self.mean
        n = n_a + n_b
        delta = mean_b - mean_a
        share = np.divide(n_b, n, out=np.zeros(count), where=n > 0)
        self.mean = mean_a + delta * share
        self.m2 = self.m2 + m2_b + delta * delta * n_a * share
        self.n = n
        self.files += 1
        self.pixels += x.shape[0]

    def result(self, band_indices: list[int] | None = None) -> dict:
        """The statistics as the JSON document described in the module docstring.

        Raises:
            DatasetError: No file was added, or a band has no valid value at all.
        """
        if self.bands is None:
            raise DatasetError("<input>", "no raster was read")
        empty = [int(i) for i in np.flatnonzero(self.n == 0)]
        if empty:
            raise DatasetError("<input>", f"bands {empty} hold only nodata ({self.nodata}) in "
                               f"all {self.files} files")
        nodata = self.nodata
        if nodata is not None and math.isnan(float(nodata)):
            nodata = "nan"
        return {"bands": self.bands, "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in np.sqrt(self.m2 / self.n)], "count": self.pixels,
                "valid": [int(v) for v in self.n], "files": self.files, "nodata": nodata,
                "band_indices": band_indices}


def read_band_stats(path: str | os.PathLike) -> tuple[list[float], list[float]]:
    """``(mean, std)`` per band from a ``ds2d2-band-stats`` JSON file.

    Raises:
        DatasetError: A missing or malformed file, or a non-positive std, naming the file.
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        raise DatasetError(path, f"cannot read band statistics ({err}); write them with "
                           "ds2d2-band-stats") from err
    try:
        mean = [float(v) for v in doc["mean"]]
        std = [float(v) for v in doc["std"]]
        bands = int(doc.get("bands", len(mean)))
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(path, f"not a band statistics file (needs 'mean' and 'std' lists): "
                           f"{err}") from err
    if not len(mean) == len(std) == bands:
        raise DatasetError(path, f"'bands' is {bands} but 'mean' has {len(mean)} values and "
                           f"'std' {len(std)}")
    bad = [i for i, s in enumerate(std) if not s > 0 or not math.isfinite(s)]
    if bad or not all(math.isfinite(m) for m in mean):
        raise DatasetError(path, f"std must be positive and finite and mean finite; bands {bad} "
                           "have a zero or non-finite std (a constant band cannot be normalised)")
    return mean, std
