"""DS2D2 losses: the explicit spectral stream and the implicit (amplified) KD losses."""

from ..connectors.feature_adapter import FeatureAdapter
from .disw_loss import DISWLoss
from .feature_kd import FGDLoss, FitNetLoss, GcBlock, MGDLoss, PKDLoss
from .kd_losses import (
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
