"""DS2D2: Dual-Stream Spectral Decoupling Distillation for MMDetection / MMRotate.

Importing the package registers every component into the mmdet registries (the mmdet
convention) and, when mmrotate is installed, into mmrotate's too, so a config of either scope
can name them after ``custom_imports=dict(imports=['ds2d2_mm'])``.
It also allow-lists mmengine's checkpoint contents for torch's ``weights_only`` loader (see
:mod:`ds2d2_mm.checkpoint`).
"""

from .checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

from . import (  # noqa: E402,F401  (registration)
    backbones,
    datasets,
    engine,
    evaluation,
    hooks,
    multiband_preprocessor,
    optim,
    prediction_kd,
    sam3_full,
    spectral,
)
from .amplifiers import HighFrequencyAmplifier, KnowledgeAmplifierBuilder  # noqa: E402
from .distiller import SpectralDistiller  # noqa: E402
from .losses import (  # noqa: E402
    DISWLoss,
    FeatureAdapter,
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
)
from .registry import register_into_mmrotate  # noqa: E402
from .self_distill import TrunkSelfDistiller  # noqa: E402
from .strategies import STRATEGIES, SingleStageStrategy, TwoStageStrategy  # noqa: E402

register_into_mmrotate()

__version__ = "0.1.0"

__all__ = [
    "DISWLoss",
    "FeatureAdapter",
    "HighFrequencyAmplifier",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
    "KnowledgeAmplifierBuilder",
    "STRATEGIES",
    "SingleStageStrategy",
    "SpectralDistiller",
    "TrunkSelfDistiller",
    "TwoStageStrategy",
]
