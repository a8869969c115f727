"""COCO-format dataset classes registered in ``mmdet.registry.DATASETS``.

Both read the json files the converters write; ``file_name`` there is relative to the dataset
root, so configs set ``data_root=<root>`` and ``data_prefix=dict(img='')``.
"""

from __future__ import annotations

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from ..utils.errors import DatasetError
from .classes import (
    DIOR_CLASSES,
    DIOR_PALETTE,
    DOTA_CLASSES,
    DOTA_PALETTE,
    SYNTHETIC_CLASSES,
    SYNTHETIC_PALETTE,
)

__all__ = ["DIORDataset", "DOTAHBBDataset", "ReportingCocoDataset", "SyntheticAerialDataset"]


class ReportingCocoDataset(CocoDataset):
    """A ``CocoDataset`` whose loading errors name the image file and the dataset index.

    A corrupt image or annotation otherwise surfaces as a bare stack trace from a data loader
    worker; here it becomes a :class:`~ds2d2_mm.utils.io.DatasetError` that says which file.
    """

    def prepare_data(self, idx: int):
        """mmdet's ``prepare_data``, with errors that name the sample."""
        try:
            return super().prepare_data(idx)
        except DatasetError:
            raise
        except Exception as err:
            info = self.get_data_info(idx)
            raise DatasetError(info.get("img_path", "?"),
                               f"dataset index {idx} could not be loaded "
                               f"({type(err).__name__}: {err})") from err


@DATASETS.register_module()
class DIORDataset(ReportingCocoDataset):
    """DIOR (20 classes, horizontal boxes) from the json of ``tools/data/dior_to_coco.py``.

    The classes are in the order of the DIOR paper and its release
    (:data:`~ds2d2_mm.datasets.classes.DIOR_CLASSES`: ... ``chimney``, ``dam``,
    ``expressway-service-area``, ``expressway-toll-station``, ``golffield`` ...). MMRotate's own
    ``DIORDataset`` orders three of them differently (``chimney``, ``expressway-service-area``,
    ``expressway-toll-station``, ``dam``, ``golffield``): labels 6, 7 and 8 mean different
    classes there, so a checkpoint trained with one dataset class and evaluated with the other
    swaps dam and the two expressway classes. Use one of them for a model's whole life, or
    reorder the classification weights of those three classes when moving between them.
    """

    METAINFO = {"classes": DIOR_CLASSES, "palette": DIOR_PALETTE}


@DATASETS.register_module()
class DOTAHBBDataset(ReportingCocoDataset):
    """DOTA v1.0 patches with horizontal boxes (15 classes), from the COCO json that
    ``tools/data/split_dota.py --coco-json`` writes (``file_name`` relative to the split folder)."""

    METAINFO = {"classes": DOTA_CLASSES, "palette": DOTA_PALETTE}


@DATASETS.register_module()
class SyntheticAerialDataset(ReportingCocoDataset):
    """The built-in synthetic aerial dataset (4 classes), as ``ds2d2-make-synthetic`` writes it."""

    METAINFO = {"classes": SYNTHETIC_CLASSES, "palette": SYNTHETIC_PALETTE}
