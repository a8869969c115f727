"""Prediction-level comparison methods that take the implicit stream's place.

``distill_cfg.implicit`` selects one (the amplifiers must then be off, ``amplifiers=dict(full=0,
high=0)``); they reuse the family's KD losses and normalisation of
:class:`~ds2d2_mm.models.distillers.strategies.DistillStrategy` (``distill_cfg.kd_cls`` /
``kd_reg``):

* :class:`PredictionKD`: the student's own head on its own FPN maps mimics the teacher's head on
  the teacher's maps (classic prediction mimicking; for RetinaNet a sigmoid BCE to the teacher's
  probabilities, ``KDQualityFocalLoss(beta=0)``, and GIoU between decoded boxes).
* :class:`CrossKD` (Wang et al., "CrossKD: Cross-Head Knowledge Distillation for Object
  Detection", CVPR 2024): the student head's intermediate maps after ``reused_teacher_head_idx``
  convolutions (each with its activation) are brought to the teacher's per-channel statistics at
  the same place and continued through the rest of the teacher's head; these cross-head
  predictions mimic the teacher's. RetinaNet heads only.

Each returns ``loss_<name>_cls`` and ``loss_<name>_reg`` scaled by ``weight``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from torch import Tensor, nn

from ...utils.errors import ConfigError
from .strategies import DistillStrategy, KDContext, SingleStageStrategy

__all__ = ["CrossKD", "PredictionKD", "cross_head_predictions", "match_channel_stats"]


class _PredictionMethod(nn.Module):
    """Base: a weight, a name for the loss terms, and a check of the pair at build time."""

    term: str = ""
    #: Arguments that weight the terms (checked finite and >= 0 by ``distill_cfg``).
    weight_keys: tuple[str, ...] = ("weight",)

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def check(self, strategy: DistillStrategy, student: BaseDetector,
              teacher: BaseDetector) -> None:
        """Refuse a student/teacher pair the method cannot compare (ConfigError)."""

    def _named(self, kd: dict[str, Tensor]) -> dict[str, Tensor]:
        return {f"loss_{self.term}_{key}": self.weight * value for key, value in kd.items()}


@MODELS.register_module()
class PredictionKD(_PredictionMethod):
    """The student's own head mimics the teacher's head (prediction mimicking).

    Single-stage: both heads on all anchors, KD losses of the family (classification weighted by
    the student assigner's label weights, regression by the teacher's top sigmoid score, both
    divided by the number of positives). Two-stage: both RoI heads on the RoIs the student sampled.

    Args:
        weight: Factor of both terms, ``loss_pred_cls`` and ``loss_pred_reg``.
    """

    term = "pred"

    def forward(self, ctx: KDContext, feats_s: Sequence[Tensor],
                feats_t: Sequence[Tensor]) -> dict[str, Tensor]:
        """KD terms from the student's FPN maps (N, C, H_l, W_l) and the teacher's."""
        strategy = ctx.strategy
        kd = strategy.kd_losses(strategy.amplifier_head(ctx.teacher), list(feats_s),
                                list(feats_t), ctx, head_s=strategy.amplifier_head(ctx.student))
        return self._named(kd)


def match_channel_stats(student: Tensor, teacher: Tensor, eps: float = 1e-6) -> Tensor:
    """Each channel of ``student`` (N, C, H, W) standardised over (N, H, W) (unbiased std plus
    ``eps``) and given the mean and unbiased std of the same channel of ``teacher``.

    The statistics are taken over the rows of the (C, N * H * W) view, as the official CrossKD
    does: the same rounding as the official code (reducing over dims (0, 2, 3) instead moved the
    float32 gradient by up to 2.5e-5 relative from it)."""
    n, c, h, w = student.shape
    s, t = student.transpose(0, 1).reshape(c, -1), teacher.transpose(0, 1).reshape(c, -1)
    s_mean, s_std = s.mean(dim=1, keepdim=True), s.std(dim=1, keepdim=True)
    t_mean, t_std = t.mean(dim=1, keepdim=True), t.std(dim=1, keepdim=True)
    return ((s - s_mean) / (s_std + eps) * t_std + t_mean).reshape(c, n, h, w).transpose(0, 1)


def _held(convs: nn.ModuleList, x: Tensor, idx: int) -> Tensor:
    """The branch's map (N, C, H, W) after its first ``idx`` convs of ``convs``, each run whole
    (conv, norm, activation): the output of conv ``idx`` after its activation, ``x`` itself (the
    FPN map, no activation) when idx = 0.

    This is the map the official CrossKD RetinaNet holds: it keeps the variable before calling
    ``activate``, but mmcv's ``ConvModule`` builds its ReLU with ``inplace=True``, which overwrites
    the kept tensor with its activation. Here the activation is computed, not relied on as a side
    effect, so a head whose activation is not in place gives the same map.
    """
    feat = x
    for conv in convs[:idx]:
        feat = conv(feat)
    return feat


def cross_head_predictions(student_head: nn.Module, teacher_head: nn.Module, idx: int,
                           feats_s: Sequence[Tensor], feats_t: Sequence[Tensor]
                           ) -> tuple[list[Tensor], list[Tensor]]:
    """CrossKD's cross-head predictions of a RetinaNet head pair.

    Per level: the student head's classification and regression branches up to the output of
    conv ``idx`` after its activation (the FPN map itself when ``idx = 0``; :func:`_held`), channel
    statistics matched to the teacher head's at the same place (:func:`match_channel_stats`), ReLU
    (when ``idx > 0``), then the teacher's convs ``idx..`` (each with its activation) and its
    ``retina_cls`` / ``retina_reg``. Gradients reach the student through the frozen teacher
    layers.

    Args:
        student_head, teacher_head: RetinaNet-style heads (``cls_convs``, ``reg_convs``,
            ``retina_cls``, ``retina_reg``) of equal width at the reuse index.
        idx: ``reused_teacher_head_idx``, 0 to the number of stacked convs.
        feats_s, feats_t: Per level FPN maps (N, C, H_l, W_l) of student and teacher.

    Returns:
        Per level class logits (N, A * C, H_l, W_l) and deltas (N, A * 4, H_l, W_l).
    """
    cls_out, reg_out = [], []
    for x_s, x_t in zip(feats_s, feats_t, strict=True):
        with torch.no_grad():
            t_cls = _held(teacher_head.cls_convs, x_t, idx)
            t_reg = _held(teacher_head.reg_convs, x_t, idx)
        branches = []
        for convs, t_feat, out in ((student_head.cls_convs, t_cls, teacher_head.retina_cls),
                                   (student_head.reg_convs, t_reg, teacher_head.retina_reg)):
            feat = match_channel_stats(_held(convs, x_s, idx), t_feat)
            if idx > 0:
                feat = F.relu(feat)
            t_convs = teacher_head.cls_convs if out is teacher_head.retina_cls else \
                teacher_head.reg_convs
            for conv in t_convs[idx:]:
                feat = conv(feat)
            branches.append(out(feat))
        cls_out.append(branches[0])
        reg_out.append(branches[1])
    return cls_out, reg_out


@MODELS.register_module()
class CrossKD(_PredictionMethod):
    """CrossKD for RetinaNet (Wang et al., CVPR 2024; official code jbwang1997/CrossKD,
    ``mmdet/models/detectors/crosskd_retinanet.py``).

    The cross-head predictions (:func:`cross_head_predictions`: the student head's maps after
    ``reused_teacher_head_idx`` convs and their activations, brought to the teacher's channel
    statistics, through the rest of the teacher's head) mimic the teacher's predictions on the
    teacher's maps: classification with ``kd_cls`` on every anchor weighted by the student
    assigner's label weights, regression with ``kd_reg`` between decoded boxes weighted by the
    teacher's top sigmoid score (zero where the label weight is zero), both divided by the number
    of positives.

    Published (``configs/crosskd/crosskd_r50_retinanet_r101_fpn_2x_coco.py`` and the R18 student
    config): ``reused_teacher_head_idx=3``, ``KDQualityFocalLoss(beta=1, loss_weight=1.0)``,
    ``GIoULoss(loss_weight=1.0)``, weight 1.

    Args:
        weight: Factor of ``loss_crosskd_cls`` and ``loss_crosskd_reg``.
        reused_teacher_head_idx: Convolutions of the student head before the teacher's head takes
            over (0 to ``stacked_convs``).
    """

    term = "crosskd"

    def __init__(self, weight: float = 1.0, reused_teacher_head_idx: int = 3) -> None:
        super().__init__(weight)
        self.reused_teacher_head_idx = int(reused_teacher_head_idx)

    def check(self, strategy, student, teacher) -> None:
        """RetinaNet-style heads on both sides, with enough convs and equal head widths."""
        idx = self.reused_teacher_head_idx
        heads = {"student": getattr(student, "bbox_head", None),
                 "teacher": getattr(teacher, "bbox_head", None)}
        for what, head in heads.items():
            if not isinstance(strategy, SingleStageStrategy) or not all(
                    hasattr(head, a) for a in ("cls_convs", "reg_convs", "retina_cls",
                                               "retina_reg")):
                raise ConfigError(
                    f"distill_cfg.implicit: CrossKD takes RetinaNet heads (cls_convs, reg_convs, "
                    f"retina_cls, retina_reg); the {what} has {type(head).__name__}")
            if not 0 <= idx <= len(head.cls_convs):
                raise ConfigError(
                    f"distill_cfg.implicit.reused_teacher_head_idx={idx}: the {what} head has "
                    f"{len(head.cls_convs)} stacked convs (0 to {len(head.cls_convs)})")
        s_width = heads["student"].in_channels if idx == 0 else heads["student"].feat_channels
        t_width = heads["teacher"].in_channels if idx == 0 else heads["teacher"].feat_channels
        if s_width != t_width:
            raise ConfigError(
                f"distill_cfg.implicit: CrossKD feeds the student head's maps ({s_width} "
                f"channels) to the teacher's head ({t_width}); use heads of equal width")

    def forward(self, ctx: KDContext, feats_s: Sequence[Tensor],
                feats_t: Sequence[Tensor]) -> dict[str, Tensor]:
        """KD terms of the cross-head predictions against the teacher's."""
        head_t = ctx.teacher.bbox_head
        cross = partial(self._cross, ctx.student.bbox_head, head_t, list(feats_t))
        kd = ctx.strategy.kd_losses(head_t, list(feats_s), list(feats_t), ctx, head_s=cross,
                                    reg_only_where_labelled=True)
        return self._named(kd)

    def _cross(self, student_head: nn.Module, teacher_head: nn.Module,
               feats_t: list[Tensor], feats_s: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return cross_head_predictions(student_head, teacher_head, self.reused_teacher_head_idx,
                                      feats_s, feats_t)
