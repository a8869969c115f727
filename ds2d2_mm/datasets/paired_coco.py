"""COCO datasets whose images come in several modalities of the same scene (RGB + infrared, ...).

On disk: one COCO json (one set of boxes) and one folder per modality holding files of the same
name, as DroneVehicle ships them (``trainimg/`` and ``trainimgr/``) and as
``ds2d2-dronevehicle-to-coco`` and the synthetic paired generator write them
(``<split>/rgb/<name>`` and ``<split>/ir/<name>``). The modalities are the keys of
``data_prefix``::

    dataset=dict(type='DroneVehicleDataset', data_root='data/DroneVehicle640/',
                 ann_file='annotations/train.json',
                 data_prefix=dict(rgb='train/rgb/', ir='train/ir/'), ...)

mmdet's ``CocoDataset.parse_data_info`` joins ``data_prefix['img']`` only; here every sample also
gets ``img_paths = {modality: path}`` (``img_path`` is the first modality's file, for the
evaluator and the visualiser), which
:class:`~ds2d2_mm.datasets.transforms.paired_loading.LoadPairedImages` reads. With
``data_prefix=dict(img=...)`` the classes are plain single-image COCO datasets (a student's test
config reads its modality alone that way).

The json may carry oriented boxes as 4-point ``segmentation`` polygons (the DroneVehicle
converter writes them): mmrotate's pipelines turn them into rotated boxes with
``mmdet.LoadAnnotations(with_mask=True, poly2mask=False)`` + ``ConvertMask2BoxType('rbox')``.
"""

from __future__ import annotations

import os.path as osp

from mmdet.registry import DATASETS

from ..utils.errors import ConfigError
from .classes import DRONEVEHICLE_CLASSES, DRONEVEHICLE_PALETTE
from .coco_datasets import ReportingCocoDataset, SyntheticAerialDataset
from .transforms.paired_loading import PAIRED_PATHS_KEY

__all__ = ["DroneVehicleDataset", "PairedCocoDataset", "RESERVED_PREFIXES",
           "SyntheticPairedDataset", "config_modalities"]

#: ``data_prefix`` keys that are not modalities (mmdet's single image and segmentation maps).
RESERVED_PREFIXES = ("img", "img_path", "seg")


def config_modalities(dataset: dict | None) -> list[str] | None:
    """The modalities a dataset config provides (its ``data_prefix`` keys other than ``img`` /
    ``seg``, through wrappers such as ``RepeatDataset``), or ``None`` for a single-image one."""
    while isinstance(dataset, dict) and "data_prefix" not in dataset and "dataset" in dataset:
        dataset = dataset["dataset"]
    prefix = (dataset or {}).get("data_prefix") if isinstance(dataset, dict) else None
    if not isinstance(prefix, dict):
        return None
    names = [k for k in prefix if k not in RESERVED_PREFIXES]
    return names or None


@DATASETS.register_module()
class PairedCocoDataset(ReportingCocoDataset):
    """A ``CocoDataset`` with one image folder per modality (the keys of ``data_prefix`` other
    than ``img`` and ``seg``, in their order); each sample carries ``img_paths``.

    Attributes:
        modalities: The modality names, or ``()`` for a plain single-image dataset.
    """

    modalities: tuple[str, ...] = ()

    def _join_prefix(self) -> None:
        """mmengine's joining of ``data_root``, then the modalities are read off the prefixes."""
        super()._join_prefix()
        self.modalities = tuple(k for k in self.data_prefix if k not in RESERVED_PREFIXES)
        if self.modalities and "img" in self.data_prefix:
            raise ConfigError(
                f"{type(self).__name__}: data_prefix has both 'img' and modality folders "
                f"{list(self.modalities)}; give one folder per modality (paired) or 'img' alone")
        for name in self.modalities:
            if not isinstance(self.data_prefix[name], str):
                raise ConfigError(f"{type(self).__name__}: data_prefix.{name} must be a folder "
                                  f"path, got {self.data_prefix[name]!r}")

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """mmdet's parsing (boxes, labels, polygons), plus ``img_paths`` of every modality."""
        if not self.modalities:
            return super().parse_data_info(raw_data_info)
        prefix = self.data_prefix
        self.data_prefix = {**prefix, "img": prefix[self.modalities[0]]}
        try:
            info = super().parse_data_info(raw_data_info)
        finally:
            self.data_prefix = prefix
        file_name = raw_data_info["raw_img_info"]["file_name"]
        info[PAIRED_PATHS_KEY] = {name: osp.join(prefix[name], file_name)
                                  for name in self.modalities}
        return info


@DATASETS.register_module()
class DroneVehicleDataset(PairedCocoDataset):
    """DroneVehicle (RGB + infrared pairs, 5 vehicle classes) from the json of
    ``ds2d2-dronevehicle-to-coco``; paired with ``data_prefix=dict(rgb=..., ir=...)``, one
    modality with ``data_prefix=dict(img=...)``."""

    METAINFO = {"classes": DRONEVEHICLE_CLASSES, "palette": DRONEVEHICLE_PALETTE}


@DATASETS.register_module()
class SyntheticPairedDataset(PairedCocoDataset):
    """The built-in scenes' paired variant (``ds2d2-make-synthetic --variant paired``: RGB and a
    thermal-like infrared band, the 4 classes of :class:`SyntheticAerialDataset`); paired with
    ``data_prefix=dict(rgb='<split>/rgb/', ir='<split>/ir/')``, one modality with
    ``data_prefix=dict(img=...)``."""

    METAINFO = SyntheticAerialDataset.METAINFO
