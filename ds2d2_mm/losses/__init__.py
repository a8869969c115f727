"""DS2D2 losses: the explicit spectral stream and the implicit (amplified) KD losses."""

from .explicit import DISWLoss, FeatureAdapter
from .kd import (
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
)

__all__ = [
    "DISWLoss",
    "FeatureAdapter",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
]
