"""Transforms (``mmdet.registry.TRANSFORMS``): ``LoadMultiBandImage`` (multi-band rasters) and
``LoadPairedImages`` (one image per modality, stacked along channels)."""

from .multiband_loading import LoadMultiBandImage, band_stats
from .paired_loading import LoadPairedImages, channel_layout

__all__ = ["LoadMultiBandImage", "LoadPairedImages", "band_stats", "channel_layout"]
