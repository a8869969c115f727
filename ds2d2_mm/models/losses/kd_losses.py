"""Implicit stream KD losses on the predictions of the knowledge amplifiers.

Only what mmdet lacks lives here: the sigmoid KD of dense heads against the teacher's scores
(:class:`KDQualityFocalLoss`), the softmax KD of RoI heads (:class:`KDKLDivLoss`) and a Gaussian
distance between oriented boxes (:class:`KDRotatedGDLoss`). The regression KD of the published
method uses mmdet's own ``GIoULoss`` (dense heads, decoded boxes) and ``L1Loss`` (RoI heads,
regression deltas), built through the registry like any mmdet loss.

All losses here compute in fp32 (their inputs are cast), follow mmdet's ``weight_reduce_loss``
conventions (``weight``, ``avg_factor``) and treat the teacher side as a constant target. Each
class says what it compares in ``kd_input`` (see :mod:`ds2d2_mm.models.distillers.strategies`, which
refuses a loss that does not fit the predictions it would receive).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor, nn

#: What a KD loss compares (``kd_input`` of the loss classes, see
#: ds2d2_mm.models.distillers.strategies):
SIGMOID_LOGITS = "sigmoid logits"  # per-class logits of a sigmoid (dense) classifier
SOFTMAX_LOGITS = "softmax logits"  # C + 1 logits of a softmax classifier (background included)
HBOXES = "horizontal boxes"  # decoded x1, y1, x2, y2 boxes
RBOXES = "rotated boxes"  # decoded cx, cy, w, h, angle boxes
ANY_VECTORS = "any vectors"  # elementwise losses: boxes or regression deltas alike

_REDUCTIONS = ("sum", "mean")


@MODELS.register_module()
class KDQualityFocalLoss(nn.Module):
    """Sigmoid KD: BCE against the teacher's scores, modulated by ``|sigma(s) - sigma(t)|^beta``.

    ``loss = loss_weight / avg_factor * sum_a w_a sum_c BCE(s_ac, p_ac) |sigma(s_ac) - p_ac|^beta``
    with ``p = sigma(t)``; the single-stage strategy passes the assigner's label weights as ``w``
    and its number of positive anchors as ``avg_factor`` (published).

    Args:
        beta: Exponent of the modulating factor (quality-focal style; published 1).
        loss_weight: Weight of the loss.
    """

    kd_input = SIGMOID_LOGITS

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (A, C) logits of both, ``weight`` (A,) per prediction."""
        s = student_logits.float()
        p_t = teacher_logits.detach().float().sigmoid()
        gap = (s.sigmoid() - p_t).abs()
        scale = gap if self.beta == 1 else gap.pow(self.beta)  # x ** 1 is x: one pass less
        loss = F.binary_cross_entropy_with_logits(s, p_t, reduction="none") * scale
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * weight_reduce_loss(loss.sum(dim=1), weight, "mean", avg_factor)


@MODELS.register_module()
class KDKLDivLoss(nn.Module):
    """Softmax KD: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` per prediction, summed over the
    classes (background included), then summed (published) or averaged over the predictions.

    Args:
        temperature: Softening temperature ``T`` (published 3).
        loss_weight: Weight of the loss (published 0.5).
        reduction: ``'sum'`` over the predictions (published: the RoIs' KL is summed, not
            averaged) or ``'mean'`` (``avg_factor``, when given, replaces the count).
    """

    kd_input = SOFTMAX_LOGITS

    def __init__(self, temperature: float = 3.0, loss_weight: float = 1.0,
                 reduction: str = "sum") -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"KDKLDivLoss: temperature must be > 0, got {temperature}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"KDKLDivLoss: reduction must be one of {_REDUCTIONS}, "
                             f"got {reduction!r}")
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (R, C + 1) class logits of both, ``weight`` (R,)."""
        t = self.temperature
        log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
        log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1) * t * t
        if weight is not None:
            weight = weight.float()
        if self.reduction == "sum":
            return self.loss_weight * weight_reduce_loss(kl, weight, "sum")
        return self.loss_weight * weight_reduce_loss(kl, weight, "mean", avg_factor)


@MODELS.register_module()
class KDRotatedGDLoss(nn.Module):
    """Oriented-box regression KD: a Gaussian distance (KLD by default) between student and
    teacher rotated boxes, through mmrotate's ``GDLoss``. An extension of this project: the
    published method distils horizontal boxes only.

    Args:
        loss_type: ``'kld'``, ``'jd'``, ``'bcd'`` or ``'gwd'`` (see mmrotate's GDLoss).
        fun: Function applied to the distance (``'log1p'``, ``'sqrt'``, ``'none'``).
        tau: GDLoss's tau.
        loss_weight: Weight of the loss.
    """

    kd_input = RBOXES

    def __init__(self, loss_type: str = "kld", fun: str = "log1p", tau: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        try:
            from mmrotate.models.losses.gaussian_dist_loss import GDLoss
        except ImportError as exc:  # pragma: no cover - mmrotate is part of the environment
            raise ImportError("KDRotatedGDLoss needs mmrotate (PyPI mmrotate-dev)") from exc
        self.gd = GDLoss(loss_type=loss_type, fun=fun, tau=tau, reduction="mean",
                         loss_weight=1.0)
        self.loss_weight = loss_weight

    def forward(self, student_boxes: Tensor, teacher_boxes: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (A, 5) cx, cy, w, h, angle boxes of both, ``weight`` (A,)."""
        if student_boxes.shape[-1] != 5:
            raise ValueError(f"KDRotatedGDLoss takes (A, 5) rotated boxes, "
                             f"got {tuple(student_boxes.shape)}")
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * self.gd(student_boxes.float(), teacher_boxes.detach().float(),
                                          weight=weight, avg_factor=avg_factor)


def safe_avg_factor(value: float | Tensor) -> Tensor | float:
    """``max(value, 1)`` without a host sync for tensors."""
    if torch.is_tensor(value):
        return value.float().clamp(min=1.0)
    return max(float(value), 1.0)
