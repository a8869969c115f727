"""Drawing primitives of the synthetic aerial scenes: an RGB float canvas, noise and textures.

Coordinates are continuous pixel coordinates with pixel ``(i, j)`` covering ``[j, j + 1) x
[i, i + 1)`` (the COCO convention); shapes are anti-aliased with sub-pixel precision.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "Canvas",
    "Pose",
    "fill_mask",
    "fractal_noise",
    "rect_corners",
    "smooth_noise",
    "stripes",
]

_SHIFT = 4  # sub-pixel bits of cv2 drawing calls
_SCALE = float(1 << _SHIFT)


class Pose:
    """A rotated frame: centre, length along ``angle`` (radians), width across it.

    ``point(a, b)`` maps local coordinates (``a`` along the length axis, ``b`` across) to the
    image, so shapes are described once in their own frame.
    """

    __slots__ = ("cx", "cy", "length", "width", "angle", "u", "v")

    def __init__(self, cx: float, cy: float, length: float, width: float, angle: float) -> None:
        self.cx, self.cy, self.length, self.width, self.angle = cx, cy, length, width, angle
        self.u = np.array([np.cos(angle), np.sin(angle)])
        self.v = np.array([-np.sin(angle), np.cos(angle)])

    def points(self, local: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """Image coordinates ``(K, 2)`` of local points ``(K, 2)`` given as ``(a, b)`` pairs."""
        local = np.asarray(local, dtype=np.float64).reshape(-1, 2)
        return np.array([self.cx, self.cy]) + local[:, :1] * self.u + local[:, 1:] * self.v

    def corners(self) -> np.ndarray:
        """The 4 corners ``(4, 2)`` of the ``length x width`` rectangle (oriented box)."""
        return rect_corners(self, self.length, self.width)


def rect_corners(pose: Pose, length: float, width: float, offset: float = 0.0) -> np.ndarray:
    """Corners ``(4, 2)`` of a ``length x width`` rectangle centred ``offset`` along the axis."""
    a, b = length / 2, width / 2
    return pose.points([(offset - a, -b), (offset + a, -b), (offset + a, b), (offset - a, b)])


class Canvas:
    """An RGB float32 image ``(H, W, 3)`` with alpha-blended, anti-aliased shape drawing."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.height, self.width = image.shape[:2]

    def _window(self, lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int, int] | None:
        x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
        x1 = min(int(np.ceil(hi[0])) + 2, self.width)
        y1 = min(int(np.ceil(hi[1])) + 2, self.height)
        return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)

    def _apply(self, mask: np.ndarray, window: tuple[int, int, int, int],
               color: Sequence[float] | np.ndarray, alpha: float) -> None:
        x0, y0, x1, y1 = window
        a = mask.astype(np.float32) * np.float32(alpha / 255.0)
        roi = self.image[y0:y1, x0:x1]
        color = np.asarray(color, dtype=np.float32)
        if color.ndim == 3:
            color = color[y0:y1, x0:x1]
        roi += (color - roi) * a[..., None]

    def polygon(self, pts: np.ndarray, color: Sequence[float] | np.ndarray,
                alpha: float = 1.0) -> None:
        """Fills the polygon ``pts`` ``(K, 2)`` with ``color`` (RGB, or an image-sized texture)."""
        pts = np.asarray(pts, dtype=np.float64)
        window = self._window(pts.min(axis=0), pts.max(axis=0))
        if window is None:
            return
        x0, y0, x1, y1 = window
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed = np.round((pts - (x0 + 0.5, y0 + 0.5)) * _SCALE).astype(np.int32)
        cv2.fillPoly(mask, [fixed], 255, cv2.LINE_AA, _SHIFT)
        self._apply(mask, window, color, alpha)

    def circle(self, center: Sequence[float], radius: float, color: Sequence[float],
               alpha: float = 1.0, thickness: float = -1.0) -> None:
        """A filled disc, or a ring of ``thickness`` pixels when ``thickness > 0``."""
        center = np.asarray(center, dtype=np.float64)
        reach = radius + max(thickness, 0.0)
        window = self._window(center - reach, center + reach)
        if window is None:
            return
        x0, y0, x1, y1 = window
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        c = tuple(int(v) for v in np.round((center - (x0 + 0.5, y0 + 0.5)) * _SCALE))
        cv2.circle(mask, c, int(round(radius * _SCALE)), 255,
                   -1 if thickness <= 0 else max(int(round(thickness)), 1), cv2.LINE_AA, _SHIFT)
        self._apply(mask, window, color, alpha)

    def blend(self, mask: np.ndarray, color: Sequence[float] | np.ndarray,
              alpha: float = 1.0) -> None:
        """Blends ``color`` (RGB or an image-sized texture) where the float mask ``(H, W)`` is 1."""
        a = np.clip(mask, 0.0, 1.0).astype(np.float32) * np.float32(alpha)
        color = np.asarray(color, dtype=np.float32)
        self.image += (color - self.image) * a[..., None]

    def to_uint8(self) -> np.ndarray:
        """The image rounded and clipped to ``uint8`` RGB."""
        return np.clip(np.round(self.image), 0, 255).astype(np.uint8)


def fill_mask(height: int, width: int, polygons: Sequence[np.ndarray]) -> np.ndarray:
    """A float32 ``(H, W)`` mask in [0, 1] of the union of ``polygons`` (each ``(K, 2)``)."""
    mask = np.zeros((height, width), np.uint8)
    if len(polygons):
        fixed = [np.round((np.asarray(p) - 0.5) * _SCALE).astype(np.int32) for p in polygons]
        cv2.fillPoly(mask, fixed, 255, cv2.LINE_AA, _SHIFT)
    return mask.astype(np.float32) * np.float32(1 / 255)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth noise ``(H, W)`` float32 of about unit variance with ``cells`` blobs per side."""
    small = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def fractal_noise(rng: np.random.Generator, height: int, width: int,
                  octaves: Sequence[tuple[int, float]] = ((3, 0.55), (9, 0.3), (27, 0.15))
                  ) -> np.ndarray:
    """A weighted sum of :func:`smooth_noise` at several scales ``(cells, weight)``."""
    out = np.zeros((height, width), np.float32)
    for cells, weight in octaves:
        out += np.float32(weight) * smooth_noise(rng, height, width, cells)
    return out


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def stripes(height: int, width: int, angle: float, period: float, depth: float,
            phase: float = 0.0) -> np.ndarray:
    """A sinusoidal stripe pattern ``(H, W)`` around 1 (plough lines, crop rows, waves)."""
    ys, xs = _grid(height, width)
    t = xs * np.float32(np.cos(angle)) + ys * np.float32(np.sin(angle))
    return 1.0 + np.float32(depth) * np.sin(t * np.float32(2 * np.pi / period) + np.float32(phase))
