"""DS2D2 losses: the explicit spectral stream and the implicit (amplified) KD losses."""

from .explicit import DISWLoss, FeatureAdapter
from .feature_kd import FGDLoss, FitNetLoss, GcBlock, MGDLoss, PKDLoss
from .kd import (
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
)

__all__ = [
    "DISWLoss",
    "FGDLoss",
    "FeatureAdapter",
    "FitNetLoss",
    "GcBlock",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
    "MGDLoss",
    "PKDLoss",
]
