"""Student and teacher as a pair: which strategy runs the amplifiers, how the student's FPN levels
meet the teacher's, and what cannot be compared (refused at build, naming both families).

Same family (the published case): the amplifiers are the teacher's heads of the student's own
family; one strategy serves the student's pass and the amplifiers, the student's recorded targets
(anchor targets, sampled RoIs) serve the amplifiers, and both detectors have the same FPN levels.

Heterogeneous pair (this project's extension): the teacher is of another family than the student
(a two-stage teacher for a one-stage student, a RetinaNet teacher for an RTMDet student). The
amplifiers are the teacher's heads, so both predictions they compare come from the teacher's
family: the amplifiers' strategy is chosen from the teacher, and the targets it needs are made
on the amplifier's grid (a dense head assigns the ground truth itself; a two-stage teacher's RoIs
are sampled from its own proposals, :class:`~.strategies.teacher_rois.TeacherRoIStrategy`). The
student's FPN maps are brought onto the teacher's levels (:class:`LevelMatch`), then the connector
maps channels as for any pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch.nn.functional as F
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from torch import Tensor

from ...utils.errors import ConfigError
from .strategies import (
    STRATEGIES,
    DistillStrategy,
    SingleStageStrategy,
    StudentPass,
    TwoStageStrategy,
    build_strategy,
)


def family(detector: BaseDetector) -> str:
    """A detector's family as messages name it: ``'RTMDet (RTMDetSepBNHead)'``,
    ``'FasterRCNN (StandardRoIHead, Shared2FCBBoxHead)'``."""
    roi = getattr(detector, "roi_head", None)
    if roi is not None:
        box = getattr(roi, "bbox_head", None)
        parts = [type(roi).__name__] + ([type(box).__name__] if box is not None else [])
    else:
        head = getattr(detector, "bbox_head", None)
        parts = [type(head).__name__] if head is not None else ["no detection head"]
    return f"{type(detector).__name__} ({', '.join(parts)})"


def level_strides(detector: BaseDetector) -> list[int] | None:
    """Strides of the FPN levels the detector's first head reads (its prior generator's), or
    ``None`` when it has none."""
    for attr in ("bbox_head", "rpn_head"):
        gen = getattr(getattr(detector, attr, None), "prior_generator", None)
        strides = getattr(gen, "strides", None)
        if strides:
            return [int(s[0]) if isinstance(s, (tuple, list)) else int(s) for s in strides]
    return None


def fpn_channels(detector: BaseDetector, what: str) -> int:
    """``out_channels`` of the detector's neck (FPN, CSPNeXtPAFPN, ...)."""
    neck = getattr(detector, "neck", None)
    channels = getattr(neck, "out_channels", None)
    if not isinstance(channels, int):
        raise ConfigError(f"SpectralDistiller: the {what} needs an FPN-like neck with one "
                          f"out_channels for every level, got {type(neck).__name__}")
    return channels


def fpn_levels(detector: BaseDetector) -> int | None:
    """Number of FPN levels: the neck's ``num_outs`` (FPN), else the number of its inputs
    (CSPNeXtPAFPN has one output per input and no ``num_outs``), else the head's strides."""
    neck = getattr(detector, "neck", None)
    levels = getattr(neck, "num_outs", None)
    if levels is None and isinstance(getattr(neck, "in_channels", None), (list, tuple)):
        levels = len(neck.in_channels)
    if levels is None:
        strides = level_strides(detector)
        levels = len(strides) if strides else None
    return levels


@dataclass(frozen=True)
class LevelMatch:
    """Where each teacher level's student map comes from, matched by stride.

    ``sources[j] = (i, k)``: teacher level ``j`` reads student level ``i``; ``k = 0`` as it is
    (same stride), ``k > 0`` after ``k`` stride-2 max-poolings (a teacher level coarser than every
    student level, made from the student's coarsest as mmdet's FPN makes its extra levels,
    ``F.max_pool2d(x, 1, stride=2)``), ``k < 0`` resized bilinearly to the teacher's grid (a
    level finer than every student level, from the student's finest). Student levels whose
    stride the teacher lacks are not distilled.
    """

    sources: tuple[tuple[int, int], ...]
    student_strides: tuple[int, ...]
    teacher_strides: tuple[int, ...]

    @classmethod
    def of(cls, student: Sequence[int], teacher: Sequence[int], names: str) -> LevelMatch:
        """The match of two stride lists (ascending).

        Raises:
            ConfigError: a teacher stride between two student strides, not a power-of-two
                multiple of the student's coarsest or divisor of its finest, or no stride in
                common; ``names`` names both families.
        """
        sources = []
        for st in teacher:
            if st in student:
                sources.append((list(student).index(st), 0))
                continue
            near = max(student) if st > max(student) else min(student)
            ratio = st / near if st > near else near / st
            octaves = round(math.log2(ratio)) if ratio > 0 else 0
            if st > min(student) and st < max(student) or 2 ** octaves != ratio:
                raise ConfigError(
                    f"SpectralDistiller: {names}: the teacher's FPN level of stride {st} matches "
                    f"no student level (student strides {list(student)}, teacher "
                    f"{list(teacher)}); levels are matched by stride, and a teacher level "
                    "beyond the student's is made from its coarsest or finest level by "
                    "factors of 2 only")
            sources.append((list(student).index(near), octaves if st > near else -octaves))
        if not any(k == 0 for _, k in sources):
            raise ConfigError(
                f"SpectralDistiller: {names}: no FPN stride in common (student {list(student)}, "
                f"teacher {list(teacher)}); nothing of the student would be compared as it is")
        return cls(tuple(sources), tuple(student), tuple(teacher))

    def __call__(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> list[Tensor]:
        """Student maps (N, C_s, H_i, W_i) on the teacher's levels, one per teacher map."""
        out = []
        for (i, k), ref in zip(self.sources, teacher, strict=True):
            x = student[i]
            if k > 0:
                for _ in range(k):
                    x = F.max_pool2d(x, 1, stride=2)
            elif k < 0:
                x = F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)
            out.append(x)
        return out


@dataclass
class PairPlan:
    """How a student and its teacher are compared.

    Attributes:
        amplifier_strategy: Runs the amplifiers (the student's strategy for a same-family pair,
            the teacher's otherwise) and makes the KD terms.
        kd_detector: The detector whose family gives the default KD losses and what they
            receive (the student; the teacher for a heterogeneous pair).
        heterogeneous: Whether the teacher is of another family.
        levels: The student's levels on the teacher's (heterogeneous pairs only).
        student_family, teacher_family: As messages name them.
        channels: (student, teacher) FPN channels.
        num_levels: FPN levels compared (the teacher's).
    """

    amplifier_strategy: DistillStrategy
    kd_detector: BaseDetector
    heterogeneous: bool
    student_family: str
    teacher_family: str
    channels: tuple[int, int]
    num_levels: int
    levels: LevelMatch | None = None
    _extras: dict = field(default_factory=dict)

    def amplifier_pass(self, sp: StudentPass, feats_t: Sequence[Tensor], samples: SampleList,
                       teacher: BaseDetector) -> StudentPass:
        """The student pass as the amplifiers read it: ``sp`` itself for a same-family pair;
        for a heterogeneous one the student's maps on the teacher's levels, and in place of the
        student's recorded targets (of another family) what the teacher's strategy makes on
        its own grid (``teacher_extras``: a two-stage teacher's sampled RoIs)."""
        if not self.heterogeneous:
            return sp
        feats = self.levels(sp.feats, feats_t)
        make = getattr(self.amplifier_strategy, "teacher_extras", None)
        extras = make(teacher, list(feats_t), samples) if callable(make) else {}
        return StudentPass(losses=sp.losses, feats=tuple(feats), extras=extras)


def _same_family(student: BaseDetector, teacher: BaseDetector, s_strategy: DistillStrategy,
                 t_strategy: DistillStrategy) -> bool:
    if type(s_strategy) is not type(t_strategy):
        return False
    try:
        s_head, t_head = s_strategy.amplifier_head(student), s_strategy.amplifier_head(teacher)
    except ConfigError:
        return False
    return (type(s_head) is type(t_head)
            and type(getattr(s_head, "bbox_head", None)) is type(getattr(t_head, "bbox_head",
                                                                         None)))


def _teacher_strategy(teacher: BaseDetector, names: str) -> DistillStrategy:
    """The strategy that runs a teacher of another family than the student's as amplifier."""
    refuse = (f"SpectralDistiller: {names}: no distill strategy runs the teacher's heads as "
              "knowledge amplifiers")
    try:
        strategy = build_strategy(teacher)
    except ConfigError:
        raise ConfigError(refuse) from None
    if isinstance(strategy, TwoStageStrategy):
        roi = teacher.roi_head
        if getattr(teacher, "rpn_head", None) is None or not hasattr(roi, "bbox_assigner"):
            raise ConfigError(f"{refuse}: a two-stage teacher samples the RoIs itself here, so it "
                              "needs its RPN and its train_cfg (rpn_proposal, rcnn assigner and "
                              "sampler) in the teacher config")
        return STRATEGIES.build({"type": "TeacherRoIStrategy"})
    if type(strategy) is SingleStageStrategy and not isinstance(teacher.bbox_head, AnchorHead):
        raise ConfigError(f"{refuse} (a {type(teacher.bbox_head).__name__} is neither an "
                          "anchor head nor one of the dense families FCOS, ATSS, GFL, RTMDet, "
                          "RTMDet-R)")
    return strategy


def plan_pair(student: BaseDetector, teacher: BaseDetector, strategy: DistillStrategy,
              distill_cfg: dict) -> PairPlan:
    """The plan of a built student and teacher, with ``strategy`` the student's.

    Raises:
        ConfigError: the pair cannot be compared (class counts, box types, FPN levels, a
            prediction-level method on a heterogeneous pair, a teacher no strategy runs),
            naming both families.
    """
    s_family, t_family = family(student), family(teacher)
    names = f"student {s_family}, teacher {t_family}"
    channels = (fpn_channels(student, "student"), fpn_channels(teacher, "teacher"))
    t_strategy = strategy if distill_cfg.get("strategy") is not None else None
    if t_strategy is None:
        try:
            t_strategy = build_strategy(teacher)
        except ConfigError:
            t_strategy = None
    if t_strategy is not None and _same_family(student, teacher, strategy, t_strategy):
        strategy.check_pair(student, teacher)
        s_lv, t_lv = fpn_levels(student), fpn_levels(teacher)
        if s_lv != t_lv:
            raise ConfigError(f"SpectralDistiller: the student has {s_lv} FPN levels and the "
                              f"teacher {t_lv}; set the student's neck.num_outs to {t_lv}")
        return PairPlan(amplifier_strategy=strategy, kd_detector=student, heterogeneous=False,
                        student_family=s_family, teacher_family=t_family, channels=channels,
                        num_levels=t_lv)

    t_strategy = _teacher_strategy(teacher, names)
    if distill_cfg.get("implicit") is not None:
        raise ConfigError(f"distill_cfg.implicit ({distill_cfg['implicit'].get('type')}) "
                          f"compares the student's own head with the teacher's; the {names} are "
                          "of two families: use the amplifiers (implicit=None)")
    ns, nt = strategy.num_classes(student), t_strategy.num_classes(teacher)
    if ns is not None and nt is not None and ns != nt:
        raise ConfigError(f"SpectralDistiller: {names}: the student predicts {ns} classes and the "
                          f"teacher {nt}; set the same num_classes in both configs")
    bs, bt = strategy.box_type(student), t_strategy.box_type(teacher)
    if bs != bt:
        raise ConfigError(f"SpectralDistiller: {names}: the student predicts {bs} boxes and the "
                          f"teacher {bt} boxes; the amplified predictions cannot be compared "
                          "(use a teacher of the student's box type)")
    s_strides, t_strides = level_strides(student), level_strides(teacher)
    if not s_strides or not t_strides:
        raise ConfigError(f"SpectralDistiller: {names}: the FPN levels of a heterogeneous pair are "
                          "matched by stride, and a head without a prior generator gives none")
    levels = LevelMatch.of(s_strides, t_strides, names)
    return PairPlan(amplifier_strategy=t_strategy, kd_detector=teacher, heterogeneous=True,
                    student_family=s_family, teacher_family=t_family, channels=channels,
                    num_levels=len(t_strides), levels=levels)


__all__ = ["LevelMatch", "PairPlan", "family", "fpn_channels", "fpn_levels", "level_strides",
           "plan_pair"]
