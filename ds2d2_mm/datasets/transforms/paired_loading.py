"""``LoadPairedImages``: load the same scene in several modalities (e.g. RGB and infrared) and
stack them along the channel axis into one ``img``.

Why one stacked image: mmdet's geometric transforms (``Resize``, ``RandomFlip``, ``RandomCrop``,
``Pad``) and mmrotate's rotations act on ``results['img']`` once, so stacking makes them apply
*identically* to every modality, with one set of boxes. The channel layout is recorded in
``results['modality_channels']`` (``{'rgb': (0, 3), 'ir': (3, 4)}``: start and end channel of
each modality, in the loader's order); keep it in ``PackDetInputs(meta_keys=...)`` so that the
data preprocessor can check it against its per-modality normalisation
(``MultiBandDetDataPreprocessor(modalities=...)``) and a distiller can hand each model its own
channels (``distill_cfg.teacher_input`` / ``student_input``).

Each modality's file comes from ``results['img_paths'][name]``, which
:class:`~ds2d2_mm.datasets.paired_coco.PairedCocoDataset` fills from
``data_prefix=dict(rgb='train/rgb/', ir='train/ir/')``. TIFF / GeoTIFF files are read with
:class:`~ds2d2_mm.datasets.transforms.multiband_loading.LoadMultiBandImage` (any band count; its
options go in the modality's dict), other formats (PNG, JPEG, ...) with OpenCV as mmcv's
``LoadImageFromFile`` does, keeping 8 or 16 bits: a 3-channel file is BGR (mmcv's channel order;
normalise with ``bgr_to_rgb=True`` where the teacher was trained so), and a colour file read as 1
channel is converted to grayscale (a one-band PNG is read as is); otherwise the file must have the
modality's channel count.

Example (DroneVehicle, RGB teacher and infrared student)::

    dict(type='LoadPairedImages', modalities=dict(rgb=3, ir=1)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(640, 512), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=(..., 'modality_channels')),
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine import fileio

from ...utils.errors import ConfigError, ImageError
from ..raster import TIFF_SUFFIXES
from .multiband_loading import LoadMultiBandImage

__all__ = ["LoadPairedImages", "PAIRED_PATHS_KEY", "channel_layout", "decode_image"]

#: Key of ``results`` that holds ``{modality: file path}`` (set by PairedCocoDataset).
PAIRED_PATHS_KEY = "img_paths"
#: OpenCV conversions of colour files read as one channel.
_TO_GRAY = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}


def channel_layout(channels: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """``{name: (start, end)}`` of modalities stacked in the order of ``channels``.

    >>> channel_layout({'rgb': 3, 'ir': 1})
    {'rgb': (0, 3), 'ir': (3, 4)}
    """
    layout, start = {}, 0
    for name, count in channels.items():
        layout[name] = (start, start + int(count))
        start += int(count)
    return layout


def decode_image(path: str, channels: int, backend_args: dict | None = None) -> np.ndarray:
    """Decode a PNG / JPEG / ... file into ``(H, W, channels)`` with OpenCV (mmcv's backend),
    keeping its dtype (8 or 16 bit).

    A 3- or 4-channel file read as 1 channel is converted to grayscale (DroneVehicle's infrared
    JPEGs have three equal channels); any other channel mismatch is an error.

    Raises:
        ImageError: A missing or undecodable file, or one with another channel count.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except Exception as err:
        raise ImageError(path, f"cannot open ({type(err).__name__}: {err})") from err
    img = mmcv.imfrombytes(data, flag="unchanged", backend="cv2") if data else None
    if img is None:
        raise ImageError(path, "cannot decode the image (corrupt or not an image file)")
    if img.ndim == 2:
        img = img[..., None]
    if channels == 1 and img.shape[-1] in _TO_GRAY:
        img = cv2.cvtColor(img, _TO_GRAY[img.shape[-1]])[..., None]
    if img.shape[-1] != channels:
        raise ImageError(path, f"the image has {img.shape[-1]} channels but its modality is "
                         f"configured with {channels}")
    return img


def _modality_spec(name: str, spec: int | Mapping) -> tuple[int, dict]:
    """(channels, LoadMultiBandImage options) of one modality's config value."""
    if isinstance(spec, bool) or not isinstance(spec, (int, Mapping)):
        raise ConfigError(f"LoadPairedImages: modalities.{name} must be a channel count or a "
                          f"dict(channels=C, ...), got {spec!r}")
    options = dict(spec) if isinstance(spec, Mapping) else {"channels": spec}
    channels = options.pop("channels", None)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError(f"LoadPairedImages: modalities.{name}.channels must be an integer "
                          f">= 1, got {channels!r}")
    return channels, options


@TRANSFORMS.register_module()
class LoadPairedImages(BaseTransform):
    """Load every modality of a sample and stack them along channels.

    Required keys: ``img_paths`` (``{modality: path}``). Added keys: ``img`` ``(H, W, C_total)``,
    ``img_shape``, ``ori_shape`` ``(H, W)``, ``modality_channels`` (``{name: (start, end)}``),
    and ``img_path`` when missing (the first modality's file).

    Args:
        modalities: Ordered ``{name: channels}``, or ``{name: dict(channels=C, **options)}`` with
            :class:`~ds2d2_mm.datasets.transforms.multiband_loading.LoadMultiBandImage` options
            (``bands``, ``nodata``, ``fill``) for TIFF files. The stack follows this order.
        to_float32: Return float32 (otherwise the common dtype of the modalities: uint8 for
            PNG / JPEG pairs; mixed dtypes become float32).
        backend_args: mmengine file backend arguments.
    """

    def __init__(self, modalities: Mapping[str, int | Mapping], to_float32: bool = False,
                 backend_args: dict | None = None) -> None:
        if not isinstance(modalities, Mapping) or not modalities:
            raise ConfigError("LoadPairedImages: modalities must be a non-empty dict "
                              f"{{name: channels}}, e.g. dict(rgb=3, ir=1); got {modalities!r}")
        self.channels: dict[str, int] = {}
        self.tiff_loaders: dict[str, LoadMultiBandImage] = {}
        for name, spec in modalities.items():
            channels, options = _modality_spec(name, spec)
            self.channels[name] = channels
            try:
                self.tiff_loaders[name] = LoadMultiBandImage(
                    expected_bands=None if "bands" in options else channels,
                    to_float32=False, backend_args=backend_args, **options)
            except TypeError as err:
                raise ConfigError(f"LoadPairedImages: modalities.{name}: {err}") from err
        self.layout = channel_layout(self.channels)
        self.to_float32 = to_float32
        self.backend_args = None if backend_args is None else dict(backend_args)

    def _load(self, name: str, path: str) -> np.ndarray:
        """``(H, W, C_name)`` of one modality's file."""
        if path.lower().endswith(TIFF_SUFFIXES):
            img = self.tiff_loaders[name].transform({"img_path": path})["img"]
            if img.ndim == 2:
                img = img[..., None]
            if img.shape[-1] != self.channels[name]:
                raise ImageError(path, f"{img.shape[-1]} bands are kept but modality {name!r} "
                                 f"is configured with {self.channels[name]} channels")
            return img
        return decode_image(path, self.channels[name], self.backend_args)

    def transform(self, results: dict) -> dict:
        """Stack the modalities of ``results['img_paths']``; see the class docstring."""
        paths = results.get(PAIRED_PATHS_KEY)
        if not isinstance(paths, Mapping):
            raise ConfigError(
                f"LoadPairedImages: the sample ({results.get('img_path', '?')}) has no "
                f"'{PAIRED_PATHS_KEY}'; use a paired dataset (PairedCocoDataset / "
                "DroneVehicleDataset) with one data_prefix per modality, e.g. "
                "data_prefix=dict(rgb='train/rgb/', ir='train/ir/')")
        missing = [name for name in self.channels if name not in paths]
        if missing:
            raise ConfigError(
                f"LoadPairedImages: modalities {missing} have no image folder; the dataset "
                f"gives {sorted(paths)} (its data_prefix keys)")
        images = [self._load(name, str(paths[name])) for name in self.channels]
        first = str(paths[next(iter(self.channels))])
        for name, img in zip(self.channels, images, strict=True):
            if img.shape[:2] != images[0].shape[:2]:
                raise ImageError(
                    paths[name], f"modality {name!r} is {img.shape[1]}x{img.shape[0]} but "
                    f"{first} is {images[0].shape[1]}x{images[0].shape[0]}; the images of a "
                    "pair must be registered to the same size")
        dtypes = {img.dtype for img in images}
        dtype = np.float32 if self.to_float32 or len(dtypes) > 1 else images[0].dtype
        img = np.ascontiguousarray(np.concatenate([i.astype(dtype, copy=False) for i in images],
                                                  axis=-1))
        results["img"] = img
        results["img_shape"] = img.shape[:2]
        results["ori_shape"] = img.shape[:2]
        results["modality_channels"] = dict(self.layout)
        results.setdefault("img_path", first)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(modalities={self.channels}, "
                f"to_float32={self.to_float32}, backend_args={self.backend_args})")
