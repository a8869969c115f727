"""DS2D2 losses: the explicit spectral stream and the implicit (amplified) KD losses."""

from .explicit import DISWLoss, FeatureAdapter
from .kd import (
    KDGIoULoss,
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
    KDWeightedL1Loss,
)

__all__ = [
    "DISWLoss",
    "FeatureAdapter",
    "KDGIoULoss",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
    "KDWeightedL1Loss",
]
