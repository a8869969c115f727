"""Datasets: DIOR and DOTA converters and the dataset classes.

Importing this subpackage registers ``DIORDataset``, ``DOTAHBBDataset`` (DOTA patches with
horizontal boxes), ``SyntheticAerialDataset`` and the paired (multi-modality) datasets
``PairedCocoDataset``, ``DroneVehicleDataset`` and ``SyntheticPairedDataset`` in
``mmdet.registry.DATASETS``, and the multi-band raster loader ``LoadMultiBandImage`` and the
paired loader ``LoadPairedImages`` in ``mmdet.registry.TRANSFORMS``. mmrotate is not imported
here (it is optional); DOTA patches with oriented boxes are read by mmrotate's own
``DOTADataset``. The generator of the built-in synthetic scenes is tooling
(:mod:`ds2d2_mm.tooling.synthetic`), not imported here.
"""

from ..utils.errors import AnnotationError, DatasetError, ImageError
from .band_statistics import BandStatsAccumulator, read_band_stats
from .classes import (
    DIOR_CLASSES,
    DIOR_PALETTE,
    DOTA_CLASSES,
    DOTA_PALETTE,
    DRONEVEHICLE_CLASSES,
    DRONEVEHICLE_PALETTE,
    SYNTHETIC_CLASSES,
    SYNTHETIC_PALETTE,
)
from .coco_datasets import DIORDataset, DOTAHBBDataset, SyntheticAerialDataset
from .converters.dior import convert_dior, parse_dior_xml, read_dior_split
from .converters.dota_format import DotaObject, format_dota_line, parse_dota_txt
from .converters.dota_split import PatchObject, crop_objects, patch_name, split_dota, window_starts
from .paired_coco import DroneVehicleDataset, PairedCocoDataset, SyntheticPairedDataset
from .raster import read_raster
from .transforms.multiband_loading import LoadMultiBandImage, band_stats
from .transforms.paired_loading import LoadPairedImages, channel_layout

__all__ = [
    "DIOR_CLASSES",
    "DIOR_PALETTE",
    "DOTA_CLASSES",
    "DOTA_PALETTE",
    "DRONEVEHICLE_CLASSES",
    "DRONEVEHICLE_PALETTE",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_PALETTE",
    "AnnotationError",
    "BandStatsAccumulator",
    "DIORDataset",
    "DOTAHBBDataset",
    "DatasetError",
    "DotaObject",
    "DroneVehicleDataset",
    "ImageError",
    "LoadMultiBandImage",
    "LoadPairedImages",
    "PairedCocoDataset",
    "PatchObject",
    "SyntheticAerialDataset",
    "SyntheticPairedDataset",
    "band_stats",
    "channel_layout",
    "convert_dior",
    "crop_objects",
    "format_dota_line",
    "parse_dior_xml",
    "parse_dota_txt",
    "patch_name",
    "read_band_stats",
    "read_dior_split",
    "read_raster",
    "split_dota",
    "window_starts",
]
