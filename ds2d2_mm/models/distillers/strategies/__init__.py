"""Per-family distillation strategies: what differs between detector families.

A strategy knows, for its family, (1) how to run the student's own task loss while keeping what
that call computed (FPN features, assigner targets, sampled RoIs), (2) which part of a detector is
an amplifier head, and (3) how to turn amplified predictions of student and teacher features into
KD losses, given a :class:`KDContext`. :class:`~ds2d2_mm.models.distillers.SpectralDistiller`
holds one strategy and stays the same class for every family; a new family is one module here
with a subclass registered in :data:`STRATEGIES` and chosen by :func:`build_strategy`.
"""

from .atss_gfl import ATSSStrategy, GFLStrategy
from .base import (
    DELTAS,
    KNOWN_LOSS_INPUTS,
    STRATEGIES,
    DistillStrategy,
    KDContext,
    StudentPass,
    build_strategy,
    loss_input,
    strategy_for_head,
)
from .dense_points import DenseHeadStrategy, FCOSStrategy, RTMDetStrategy
from .rotated_rtmdet import RotatedRTMDetStrategy
from .single_stage import SingleStageStrategy
from .teacher_rois import TeacherRoIStrategy
from .two_stage import TwoStageStrategy

__all__ = ["ATSSStrategy", "DELTAS", "KNOWN_LOSS_INPUTS", "STRATEGIES", "DenseHeadStrategy",
           "DistillStrategy", "FCOSStrategy", "GFLStrategy", "KDContext", "RTMDetStrategy",
           "RotatedRTMDetStrategy", "SingleStageStrategy", "StudentPass", "TeacherRoIStrategy",
           "TwoStageStrategy",
           "build_strategy", "loss_input", "strategy_for_head"]
