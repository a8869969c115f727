"""Model components, registered in ``mmdet.registry.MODELS`` on import.

- :mod:`.distillers`: ``SpectralDistiller`` (DS2D2), its per-family strategies, the knowledge
  amplifiers, the prediction-level comparison methods, ``TrunkSelfDistiller``;
- :mod:`.connectors`: the 1x1 feature adapter between student and teacher maps;
- :mod:`.losses`: one module per loss family (DISW explicit stream, KD losses, FitNet, FGD,
  PKD, MGD);
- :mod:`.layers`: the functional cores (wavelet / FFT decompositions, DISW maps) and the
  spectral adapter layer;
- :mod:`.backbones`, :mod:`.necks`, :mod:`.data_preprocessors`, :mod:`.detectors`: SAM3's trunk
  as a backbone, its simple pyramid, the C-band preprocessor, the prompted SAM3 detector.
"""

from . import backbones, connectors, data_preprocessors, detectors, layers, necks  # noqa: F401
from .connectors import FeatureAdapter
from .distillers import (
    STRATEGIES,
    CrossKD,
    HighFrequencyAmplifier,
    KnowledgeAmplifierBuilder,
    PredictionKD,
    SingleStageStrategy,
    SpectralDistiller,
    TrunkSelfDistiller,
    TwoStageStrategy,
)
from .losses import (
    DISWLoss,
    FGDLoss,
    FitNetLoss,
    KDKLDivLoss,
    KDQualityFocalLoss,
    KDRotatedGDLoss,
    MGDLoss,
    PKDLoss,
)

__all__ = [
    "CrossKD",
    "DISWLoss",
    "FGDLoss",
    "FeatureAdapter",
    "FitNetLoss",
    "HighFrequencyAmplifier",
    "KDKLDivLoss",
    "KDQualityFocalLoss",
    "KDRotatedGDLoss",
    "KnowledgeAmplifierBuilder",
    "MGDLoss",
    "PKDLoss",
    "PredictionKD",
    "STRATEGIES",
    "SingleStageStrategy",
    "SpectralDistiller",
    "TrunkSelfDistiller",
    "TwoStageStrategy",
]
