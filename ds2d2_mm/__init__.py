"""DS2D2: Dual-Stream Spectral Decoupling Distillation for MMDetection / MMRotate.

Importing the package registers the core (``models``, ``datasets``, ``engine``, ``evaluation``)
into the mmdet registries (the mmdet convention) and, when mmrotate is installed, into mmrotate's
too, so a config of either scope can name them after
``custom_imports=dict(imports=['ds2d2_mm'])``. It also allow-lists mmengine's checkpoint contents
for torch's ``weights_only`` loader (:mod:`ds2d2_mm.utils.checkpoint`) and keeps the module paths
of the flat layout importable, with a deprecation warning, for one release
(:mod:`ds2d2_mm.utils.deprecation`). The tooling (``apis``, ``tooling``, ``cli``) is not imported.
"""

from .utils.checkpoint import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)
from .models import (  # noqa: E402
    STRATEGIES,
    DISWLoss,
    FeatureAdapter,
    HighFrequencyAmplifier,
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
    KnowledgeAmplifierBuilder,
    SingleStageStrategy,
    SpectralDistiller,
    TrunkSelfDistiller,
    TwoStageStrategy,
)
from .registry import register_into_mmrotate  # noqa: E402
from .utils.deprecation import install_old_paths  # noqa: E402

register_into_mmrotate()
install_old_paths()

__version__ = "0.2.0"

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
