"""Necks: the simple feature pyramid on a single-scale ViT map (``SimpleFeaturePyramid``)."""

from .simple_pyramid import SimpleFeaturePyramid

__all__ = ["SimpleFeaturePyramid"]
