"""COCO-format dataset classes registered in ``mmdet.registry.DATASETS``.

Both read the json files the converters write; ``file_name`` there is relative to the dataset
root, so configs set ``data_root=<root>`` and ``data_prefix=dict(img='')``.
"""

from __future__ import annotations

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from .classes import (
    DIOR_CLASSES,
    DIOR_PALETTE,
    DOTA_CLASSES,
    DOTA_PALETTE,
    SYNTHETIC_CLASSES,
    SYNTHETIC_PALETTE,
)

__all__ = ["DIORDataset", "DOTAHBBDataset", "SyntheticAerialDataset"]


@DATASETS.register_module()
class DIORDataset(CocoDataset):
    """DIOR (20 classes, horizontal boxes) from the json of ``tools/data/dior_to_coco.py``."""

    METAINFO = {"classes": DIOR_CLASSES, "palette": DIOR_PALETTE}


@DATASETS.register_module()
class DOTAHBBDataset(CocoDataset):
    """DOTA v1.0 patches with horizontal boxes (15 classes), from the COCO json that
    ``tools/data/split_dota.py --coco-json`` writes (``file_name`` relative to the split folder)."""

    METAINFO = {"classes": DOTA_CLASSES, "palette": DOTA_PALETTE}


@DATASETS.register_module()
class SyntheticAerialDataset(CocoDataset):
    """The built-in synthetic aerial dataset (4 classes), see ``ds2d2_mm.datasets.synthetic``."""

    METAINFO = {"classes": SYNTHETIC_CLASSES, "palette": SYNTHETIC_PALETTE}
