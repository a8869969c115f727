"""Sensor variants of the synthetic scenes: SAR-like, RGB + near infrared, paired RGB / thermal.

Each variant starts from the RGB scene that :func:`~.scene.render_scene` draws for the same
seed (so it has exactly the RGB scene's objects and boxes) and derives other bands from the RGB
pixels and the objects' silhouettes. The variant's own randomness (speckle, sensor noise,
per-object brightness) comes from a second generator, seeded apart from the scene's, so the RGB
scene (and the default RGB dataset) does not change.

Variants and files (``NNNNN`` the image index, ``split`` train / val / test):

* ``rgb``: ``images/<split>/NNNNN.png``, the built-in dataset itself.
* ``sar``: ``images/<split>/NNNNN.tif``, one band, float32 linear intensity (a sigma-0-like
  backscatter). Reflectivity: dark clutter from the scene's brightness (water darkest), bright
  man-made targets (each object's silhouette, 11 to 16 dB over typical land clutter, with a few
  point scatterers); then multiplicative speckle ``I = sigma * g``, ``g ~ Gamma(L, 1 / L)``
  (``L`` looks; mean 1, coefficient of variation ``1 / sqrt(L)``), independent per pixel.
* ``rgbn``: ``images/<split>/NNNNN.tif``, four bands ``(R, G, B, NIR)`` uint16 band-sequential,
  12-bit digital numbers: R, G, B are exactly the RGB scene times :data:`DN_PER_LEVEL`; the NIR
  band is bright on vegetation (green-dominant pixels), dark on water (blue-dominant), and on the
  objects (paint, metal, concrete) lower than vegetation, plus sensor noise.
* ``paired``: ``<split>/rgb/NNNNN.png`` (the RGB scene, byte-identical to the ``rgb`` variant's
  image) and ``<split>/ir/NNNNN.png`` (one band, uint8, thermal-like: objects warm and bright,
  vegetation and water cool, dark surfaces warmer than bright ones, blurred like a low-resolution
  thermal camera, with noise). The COCO json of a split lists ``file_name`` = the name both
  folders share (``NNNNN.png``), the layout :class:`ds2d2_mm.datasets.PairedCocoDataset` reads
  with ``data_prefix=dict(rgb='<split>/rgb/', ir='<split>/ir/')``, as DroneVehicle's.

All values are in the RGB scene's pixel units (0-255) before the variant's own scaling.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...datasets.classes import SYNTHETIC_CLASSES
from ...utils.io import atomic_write_bytes, atomic_write_image
from .draw import fill_mask
from .objects import silhouette
from .scene import SceneObject

__all__ = [
    "DEFAULT_LOOKS",
    "DN_PER_LEVEL",
    "RGBN_MAX_DN",
    "VARIANTS",
    "Variant",
    "apply_speckle",
    "luminance",
    "nir_band",
    "object_masks",
    "sar_reflectivity",
    "thermal_band",
    "variant_rng",
    "vegetation",
    "water",
]

#: Looks of the SAR variant's speckle when none is given (coefficient of variation 1/2).
DEFAULT_LOOKS = 4
#: Digital numbers per 8-bit level of the RGB+NIR variant (12-bit data in a uint16 file).
DN_PER_LEVEL = 16
#: Largest digital number of the RGB+NIR variant (12 bits).
RGBN_MAX_DN = 4095
#: The seed stream of each variant's own randomness (appended to the scene's seed sequence).
_VARIANT_STREAM = {"sar": 1, "rgbn": 2, "paired": 3}

# SAR reflectivity (linear intensity): clutter, targets and point scatterers
_CLUTTER_FLOOR = 0.004  # specular water
_CLUTTER_GAIN = 0.08  # brightest land (luminance 1), quadratic in luminance
_TARGET_RANGE = (0.6, 1.6)  # per object; about 11-16 dB over clutter of 0.04
_SCATTERERS = (1, 4)  # point scatterers per object (inclusive)
_SCATTERER_GAIN = (2.0, 5.0)  # their brightness relative to their object's
# NIR band
_GREEN_SCALE = 40.0  # levels of green over red/blue for full vegetation
_BLUE_SCALE = 40.0  # levels of blue over red for full water
_MAN_MADE_NIR = (0.45, 0.8)  # object NIR as a share of its visible luminance
_NIR_NOISE = 1.5  # levels
# thermal band
_WARM_RANGE = (190.0, 245.0)  # object temperature in display levels
_THERMAL_BLUR = 1.3  # pixels (Gaussian sigma)
_THERMAL_NOISE = 2.0  # levels


def variant_rng(seed: int, stream: int, index: int, variant: str) -> np.random.Generator:
    """The generator of a variant's own randomness for image ``index`` of a split's ``stream``
    (the scene itself uses ``[seed, stream, index]``)."""
    return np.random.default_rng([seed, stream, index, _VARIANT_STREAM[variant]])


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma ``(H, W)`` float32 of an RGB image ``(H, W, 3)`` (0-255)."""
    rgb = rgb.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def object_masks(objects: Sequence[SceneObject], size: int) -> list[np.ndarray]:
    """One anti-aliased float32 ``(H, W)`` mask in [0, 1] per object (its silhouette)."""
    return [fill_mask(size, size, [silhouette(SYNTHETIC_CLASSES[o.label], o.pose)])
            for o in objects]


def vegetation(rgb: np.ndarray) -> np.ndarray:
    """Green dominance ``(H, W)`` in [0, 1]: green over the larger of red and blue
    (``_GREEN_SCALE`` levels for 1); fields, grass and trees."""
    rgb = rgb.astype(np.float32)
    other = np.maximum(rgb[..., 0], rgb[..., 2])
    return np.clip((rgb[..., 1] - other) / np.float32(_GREEN_SCALE), 0.0, 1.0)


def water(rgb: np.ndarray) -> np.ndarray:
    """Blue over red ``(H, W)`` in [0, 1] (``_BLUE_SCALE`` levels for 1); rivers, sea, pools."""
    rgb = rgb.astype(np.float32)
    return np.clip((rgb[..., 2] - rgb[..., 0]) / np.float32(_BLUE_SCALE), 0.0, 1.0)


def _paint(base: np.ndarray, masks: Sequence[np.ndarray], values: Sequence[float]) -> np.ndarray:
    """``base`` ``(H, W)`` with each mask blended towards its value (later masks on top)."""
    out = base.astype(np.float32, copy=True)
    for mask, value in zip(masks, values, strict=True):
        out += (np.float32(value) - out) * mask
    return out


def sar_reflectivity(rgb: np.ndarray, objects: Sequence[SceneObject],
                     rng: np.random.Generator) -> np.ndarray:
    """Speckle-free SAR intensity ``(H, W)`` float32 of a scene.

    Clutter ``_CLUTTER_FLOOR + _CLUTTER_GAIN * (luma / 255)^2`` (water and shadows darkest),
    each object's silhouette at a per-object target intensity, and a few point scatterers
    (single bright pixels) on each object.
    """
    size = rgb.shape[0]
    lum = luminance(rgb) / np.float32(255.0)
    sigma = np.float32(_CLUTTER_FLOOR) + np.float32(_CLUTTER_GAIN) * lum * lum
    masks = object_masks(objects, size)
    values = rng.uniform(*_TARGET_RANGE, len(objects))
    sigma = _paint(sigma, masks, values)
    for obj, mask, value in zip(objects, masks, values, strict=True):
        lo, hi = np.asarray(obj.hbox[:2]), np.asarray(obj.hbox[2:])
        for _ in range(int(rng.integers(_SCATTERERS[0], _SCATTERERS[1] + 1))):
            x, y = np.clip(rng.uniform(lo, hi), 0, size - 1).astype(int)
            gain = rng.uniform(*_SCATTERER_GAIN)
            if mask[y, x] > 0.5:  # on the object, not on the box's empty corners
                sigma[y, x] = np.float32(value * gain)
    return sigma


def apply_speckle(rng: np.random.Generator, reflectivity: np.ndarray, looks: float) -> np.ndarray:
    """``reflectivity * g`` ``(H, W)`` float32 with ``g ~ Gamma(looks, 1 / looks)`` per pixel:
    fully developed speckle averaged over ``looks`` independent looks (mean 1, variance
    ``1 / looks``)."""
    if not looks > 0:
        raise ValueError(f"looks must be > 0, got {looks}")
    g = rng.gamma(float(looks), 1.0 / float(looks), reflectivity.shape)
    return (reflectivity * g).astype(np.float32)


def nir_band(rgb: np.ndarray, objects: Sequence[SceneObject],
             rng: np.random.Generator) -> np.ndarray:
    """Near-infrared band ``(H, W)`` float32 in 8-bit levels (0-255).

    Background: ``luma * (0.7 + 1.0 * vegetation) * (1 - 0.85 * water)`` (:func:`vegetation`,
    :func:`water`); objects: a per-object share of their own
    visible luminance (man-made surfaces reflect NIR about as visible light, far below foliage).
    """
    lum = luminance(rgb)
    nir = (lum * (np.float32(0.7) + np.float32(1.0) * vegetation(rgb))
           * (np.float32(1.0) - np.float32(0.85) * water(rgb)))
    masks = object_masks(objects, rgb.shape[0])
    shares = rng.uniform(*_MAN_MADE_NIR, len(objects))
    for mask, share in zip(masks, shares, strict=True):
        nir += (lum * np.float32(share) - nir) * mask
    nir += rng.standard_normal(nir.shape).astype(np.float32) * np.float32(_NIR_NOISE)
    return np.clip(nir, 0.0, 255.0)


def thermal_band(rgb: np.ndarray, objects: Sequence[SceneObject],
                 rng: np.random.Generator) -> np.ndarray:
    """Thermal-like band ``(H, W)`` uint8: warm objects on a cooler background, blurred.

    Background ``90 + 70 * (1 - luma / 255) - 45 * vegetation - 70 * water`` (dark surfaces
    absorb sunlight, foliage and water stay cool); each object at its own warm level.
    """
    lum = luminance(rgb) / np.float32(255.0)
    temp = (np.float32(90.0) + np.float32(70.0) * (np.float32(1.0) - lum)
            - np.float32(45.0) * vegetation(rgb) - np.float32(70.0) * water(rgb))
    temp = _paint(temp, object_masks(objects, rgb.shape[0]),
                  rng.uniform(*_WARM_RANGE, len(objects)))
    temp = cv2.GaussianBlur(temp, (0, 0), sigmaX=_THERMAL_BLUR)
    temp += rng.standard_normal(temp.shape).astype(np.float32) * np.float32(_THERMAL_NOISE)
    return np.clip(np.round(temp), 0, 255).astype(np.uint8)


def _tiff_bytes(array: np.ndarray) -> bytes:
    """A deflate-compressed TIFF of ``(H, W)`` or band-sequential ``(C, H, W)`` ``array``,
    without timestamps (the same array gives the same bytes)."""
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, array, photometric="minisblack",
                     planarconfig="separate" if array.ndim == 3 else None,
                     compression="zlib", metadata=None)
    return buf.getvalue()


@dataclass(frozen=True)
class Variant:
    """How one variant writes an image and where its files go.

    ``folders(split)`` gives ``(folder, suffix)`` pairs of its image files below the root;
    ``write`` writes image ``name`` of ``split`` and returns its COCO image fields (``file_name``
    and any extra path).
    """

    name: str
    raster: bool  # TIFF images (band statistics are computed for them)
    labels: bool  # DOTA-style label files in labelTxt/

    def folders(self, split: str) -> list[tuple[str, str]]:
        """``(folder, suffix)`` of the image files of ``split``, relative to the root."""
        if self.name == "paired":
            return [(f"{split}/rgb", ".png"), (f"{split}/ir", ".png")]
        return [(f"images/{split}", ".tif" if self.raster else ".png")]

    def write(self, out: Path, split: str, name: str, rgb: np.ndarray,
              objects: Sequence[SceneObject], rng: np.random.Generator | None,
              looks: float = DEFAULT_LOOKS) -> dict:
        """Write image ``name`` of ``split`` under ``out``.

        Args:
            out: Dataset root.
            split: train / val / test.
            name: File stem (``NNNNN``).
            rgb: The RGB scene ``(H, W, 3)`` uint8.
            objects: Its objects (their silhouettes shape the other bands).
            rng: The variant's own generator (:func:`variant_rng`; ``None`` for ``rgb``).
            looks: SAR looks (``sar`` only).

        Returns:
            The COCO image fields: ``file_name`` (``paired``: the name both folders share).
        """
        if self.name == "rgb":
            file_name = f"images/{split}/{name}.png"
            atomic_write_image(out / file_name, rgb[..., ::-1])  # RGB -> BGR for OpenCV
            return {"file_name": file_name}
        if self.name == "paired":
            file_name = f"{name}.png"  # the name both modality folders share
            atomic_write_image(out / split / "rgb" / file_name, rgb[..., ::-1])
            atomic_write_image(out / split / "ir" / file_name, thermal_band(rgb, objects, rng))
            return {"file_name": file_name}
        file_name = f"images/{split}/{name}.tif"
        if self.name == "sar":
            image = apply_speckle(rng, sar_reflectivity(rgb, objects, rng), looks)
        else:  # rgbn
            nir = np.round(nir_band(rgb, objects, rng) * DN_PER_LEVEL)
            bands = [rgb[..., c].astype(np.float32) * DN_PER_LEVEL for c in range(3)] + [nir]
            image = np.clip(np.stack(bands), 0, RGBN_MAX_DN).astype(np.uint16)
        atomic_write_bytes(out / file_name, _tiff_bytes(image))
        return {"file_name": file_name}


#: The variants by name (``rgb`` is the built-in dataset).
VARIANTS: dict[str, Variant] = {
    "rgb": Variant("rgb", raster=False, labels=True),
    "sar": Variant("sar", raster=True, labels=True),
    "rgbn": Variant("rgbn", raster=True, labels=True),
    "paired": Variant("paired", raster=False, labels=False),
}
