"""Losses, one module per family: the DS2D2 explicit stream (``DISWLoss``), the implicit stream's
KD losses (``KDQualityFocalLoss``, ``KDKLDivLoss``, ``KDRotatedGDLoss``), and the feature-level
comparison methods that can take the explicit stream's place (FitNet, FGD, PKD, MGD). The
explicit-stream losses share :class:`~.stream_loss.StreamLoss`."""

from .disw_loss import DISWLoss
from .fgd import FGDLoss, GcBlock
from .fitnet import FitNetLoss
from .kd_losses import KDKLDivLoss, KDQualityFocalLoss, KDRotatedGDLoss
from .mgd import MGDLoss
from .pkd import PKDLoss
from .stream_loss import StreamLoss

__all__ = [
    "DISWLoss",
    "FGDLoss",
    "FitNetLoss",
    "GcBlock",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
    "MGDLoss",
    "PKDLoss",
    "StreamLoss",
]
