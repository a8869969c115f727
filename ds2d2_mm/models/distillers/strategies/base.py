"""Per-family distillation strategies: the base class, the KD context, the registry.

A strategy knows, for its family, (1) how to run the student's own task loss while keeping what
that call computed (FPN features, assigner targets, sampled RoIs), (2) which part of a detector is
an amplifier head, and (3) how to turn amplified predictions of student and teacher features into
KD losses. :class:`~ds2d2_mm.models.distillers.spectral_distiller.SpectralDistiller` holds one
strategy and stays the same class for every family. New families (e.g. rotated students) subclass a
strategy and override the few methods that differ.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from mmengine.registry import Registry
from torch import Tensor, nn

from ....utils import record_call
from ....utils.errors import ConfigError
from ...losses.kd_losses import (
    ANY_VECTORS,
    HBOXES,
    RBOXES,
    SOFTMAX_LOGITS,
)

STRATEGIES = Registry("ds2d2 distill strategy",
                      locations=["ds2d2_mm.models.distillers.strategies"])

#: What the losses of mmdet and mmrotate that make sense as KD losses compare, by registered name
#: (the project's own KD losses say it in their ``kd_input`` attribute).
KNOWN_LOSS_INPUTS: dict[str, str] = {
    **dict.fromkeys(("IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "EIoULoss", "SIoULoss",
                     "BoundedIoULoss"), HBOXES),
    **dict.fromkeys(("GDLoss", "RotatedIoULoss", "KFLoss", "H2RBoxConsistencyLoss"), RBOXES),
    **dict.fromkeys(("L1Loss", "SmoothL1Loss", "MSELoss", "BalancedL1Loss"), ANY_VECTORS),
    "KnowledgeDistillationKLDivLoss": SOFTMAX_LOGITS,
}
#: Name of the regression deltas of an RoI head, as a KD input.
DELTAS = "regression deltas"


def loss_input(loss: nn.Module) -> str | None:
    """What ``loss`` compares (a ``kd_input`` constant of :mod:`ds2d2_mm.models.losses.kd_losses`),
    or ``None`` when that is not known (a user's own loss without a ``kd_input`` attribute)."""
    return getattr(loss, "kd_input", None) or KNOWN_LOSS_INPUTS.get(type(loss).__name__)


@dataclass
class StudentPass:
    """What the student's loss call produced: its losses, FPN features and family extras."""

    losses: dict[str, Tensor]
    feats: tuple[Tensor, ...]
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class KDContext:
    """What a KD computation of one batch needs besides the feature maps it compares.

    Attributes:
        samples: The batch's data samples (ground truth, metainfo).
        student_pass: What the student's own loss call produced (:class:`StudentPass`).
        kd_cls: The classification KD loss module (``distill_cfg.kd_cls``).
        kd_reg: The regression KD loss module (``distill_cfg.kd_reg``).
        strategy: The family strategy that turns predictions into KD losses.
        student: The student detector.
        teacher: The frozen teacher detector.
        cache: What the amplifiers of one step share (anchors, recorded label weights, sampled
            RoIs), keyed by what makes them equal (:meth:`shared`); ``None``: nothing shared,
            each amplifier computes its own (``distill_cfg.share_work=False``).
    """

    samples: SampleList
    student_pass: StudentPass
    kd_cls: nn.Module
    kd_reg: nn.Module
    strategy: DistillStrategy
    student: BaseDetector
    teacher: BaseDetector
    cache: dict | None = None

    def shared(self, key: tuple, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per step for ``key`` when sharing is on."""
        if self.cache is None:
            return make()
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


class DistillStrategy:
    """Base class; subclasses implement one detector family."""

    #: Attribute names of the detector parts that form an amplifier head.
    head_attrs: tuple[str, ...] = ()
    #: Class names of the ``bbox_head`` types this strategy serves, matched along the head's MRO
    #: by :func:`build_strategy` (the most derived match wins); empty: chosen by its own rule.
    head_types: tuple[str, ...] = ()

    def amplifier_head(self, detector: BaseDetector) -> nn.Module:
        """The head module of ``detector`` that serves as a knowledge amplifier."""
        for attr in self.head_attrs:
            head = getattr(detector, attr, None)
            if head is not None:
                return head
        raise ConfigError(
            f"{type(self).__name__}: {type(detector).__name__} has none of {self.head_attrs}; "
            "student and teacher must be of the same detector family"
        )

    def num_classes(self, detector: BaseDetector) -> int | None:
        """Object classes that ``detector``'s amplifier head predicts."""
        head = self.amplifier_head(detector)
        return getattr(head, "num_classes", None)

    def box_type(self, detector: BaseDetector) -> str:
        """``'horizontal'`` or ``'rotated'``: the boxes ``detector`` predicts."""
        return "horizontal"

    def check_pair(self, student: BaseDetector, teacher: BaseDetector) -> None:
        """Refuse a teacher whose predictions cannot be compared with the student's.

        Raises:
            ConfigError: different families, class counts or box types, naming both values.
        """
        ns, nt = self.num_classes(student), self.num_classes(teacher)
        if ns is not None and nt is not None and ns != nt:
            raise ConfigError(
                f"the student predicts {ns} classes and the teacher {nt}: the amplified "
                "predictions cannot be compared; set the same num_classes in both configs")
        bs, bt = self.box_type(student), self.box_type(teacher)
        if bs != bt:
            raise ConfigError(f"the student predicts {bs} boxes and the teacher {bt} boxes: "
                              "use a teacher of the student's box type")

    def records(self, student: BaseDetector) -> dict[str, tuple[Any, str]]:
        """Methods to record during the student's loss call: name -> (object, method)."""
        return {"feats": (student, "extract_feat")}

    def student_pass(self, student: BaseDetector, inputs: Tensor,
                     samples: SampleList) -> StudentPass:
        """Run ``student.loss`` once and keep the recorded intermediate results."""
        with contextlib.ExitStack() as stack:
            recs = {k: stack.enter_context(record_call(obj, m))
                    for k, (obj, m) in self.records(student).items()}
            losses = student.loss(inputs, samples)
        feats = recs.pop("feats").output
        extras = {k: r for k, r in recs.items() if r.called}
        return StudentPass(losses=losses, feats=tuple(feats), extras=extras)

    def kd_losses(self, head: nn.Module, feats_s: list[Tensor], feats_t: list[Tensor],
                  ctx: KDContext, head_s: Any = None, **options: Any) -> dict[str, Tensor]:
        """KD losses ``{'cls': ..., 'reg': ...}`` of ``head`` run on both feature sets.

        Args:
            head: The head that makes the teacher's predictions (run under ``no_grad``).
            feats_s: Student-side maps, per level (N, C, H_l, W_l).
            feats_t: Teacher-side maps, per level (N, C, H_l, W_l).
            ctx: The batch's samples, student pass and KD losses.
            head_s: What makes the student's predictions (default ``head``), e.g. the student's
                own head (prediction mimicking) or CrossKD's cross head.
        """
        raise NotImplementedError

    def default_kd_losses(self, student: BaseDetector) -> dict[str, dict]:
        """The published ``kd_cls`` and ``kd_reg`` configs for ``student``'s family."""
        raise NotImplementedError

    def kd_inputs(self, student: BaseDetector) -> dict[str, str]:
        """What this strategy passes to ``kd_cls`` and ``kd_reg`` for ``student``."""
        raise NotImplementedError

    def check_kd_losses(self, student: BaseDetector, losses: dict[str, nn.Module]) -> None:
        """Refuse a KD loss that does not fit the predictions it would receive.

        Args:
            student: The built student.
            losses: ``{'kd_cls': module, 'kd_reg': module}``.

        Raises:
            ConfigError: naming ``distill_cfg.<key>``, the loss, what it compares and what this
                strategy gives it.
        """
        given = self.kd_inputs(student)
        for key, loss in losses.items():
            wants = loss_input(loss)
            if wants is None or wants == given[key]:
                continue
            if wants == ANY_VECTORS and given[key] in (HBOXES, RBOXES, DELTAS):
                continue
            default = self.default_kd_losses(student)[key]["type"].split(".")[-1]
            raise ConfigError(
                f"distill_cfg.{key}: {type(loss).__name__} compares {wants}, but "
                f"{type(self).__name__} gives it {given[key]} of the "
                f"{type(student).__name__} student; use {default} (published) or another loss "
                f"on {given[key]}")


def strategy_for_head(head: nn.Module | None) -> str | None:
    """The registered strategy whose ``head_types`` names the most derived class of ``head``'s
    MRO (e.g. ``RTMDetSepBNHead`` -> its base ``RTMDetHead`` -> ``RTMDetStrategy``), or None."""
    if head is None:
        return None
    for klass in type(head).__mro__:
        for name, strategy in STRATEGIES.module_dict.items():
            if klass.__name__ in getattr(strategy, "head_types", ()):
                return name
    return None


def build_strategy(student: BaseDetector, cfg: str | dict | None = None) -> DistillStrategy:
    """The strategy named by ``cfg``, or the one that fits ``student``'s structure."""
    if cfg is None:
        by_head = strategy_for_head(getattr(student, "bbox_head", None))
        if getattr(student, "roi_head", None) is not None:
            cfg = "TwoStageStrategy"
        elif by_head is not None:  # a family module's head (FCOS, ATSS, GFL, RTMDet, RTMDet-R)
            cfg = by_head
        elif getattr(student, "bbox_head", None) is not None:
            cfg = "SingleStageStrategy"
        else:
            raise ConfigError(
                f"SpectralDistiller: no distill strategy fits a {type(student).__name__} student "
                "(it has neither bbox_head nor roi_head); set distill_cfg.strategy"
            )
    if isinstance(cfg, str):
        cfg = {"type": cfg}
    return STRATEGIES.build(cfg)
