"""Connectors: what maps the student's FPN maps to the teacher's channels and grids
(``FeatureAdapter``, :func:`align_to`)."""

from .feature_adapter import FeatureAdapter, align_to

__all__ = ["FeatureAdapter", "align_to"]
