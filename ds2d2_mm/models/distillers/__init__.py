"""Distillers: detectors that train a student from frozen parts held outside registration.

- :class:`SpectralDistiller` (DS2D2) with its per-family :mod:`.strategies`, the knowledge
  :mod:`.amplifiers`, the prediction-level comparison methods (:mod:`.prediction_kd`), the
  ``distill_cfg`` schema (:mod:`.distill_cfg`) and what teacher and student read of a batch
  (:mod:`.input_router`);
- :class:`TrunkSelfDistiller`: the frozen original SAM3 trunk teaches the fine-tuned one.
"""

from .amplifiers import HighFrequencyAmplifier, KnowledgeAmplifierBuilder
from .prediction_kd import CrossKD, PredictionKD
from .self_distiller import TrunkSelfDistiller
from .spectral_distiller import SpectralDistiller
from .strategies import STRATEGIES, SingleStageStrategy, TwoStageStrategy

__all__ = [
    "CrossKD",
    "HighFrequencyAmplifier",
    "KnowledgeAmplifierBuilder",
    "PredictionKD",
    "STRATEGIES",
    "SingleStageStrategy",
    "SpectralDistiller",
    "TrunkSelfDistiller",
    "TwoStageStrategy",
]
