"""Implicit stream KD losses on the predictions of the knowledge amplifiers.

All losses compute in fp32 (their inputs are cast), follow mmdet's ``weight_reduce_loss``
conventions (``weight``, ``avg_factor``) and treat the teacher side as a constant target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor, nn


@MODELS.register_module()
class KDQualityFocalLoss(nn.Module):
    """Sigmoid KD: BCE against the teacher's scores, modulated by ``|sigma(s) - sigma(t)|^beta``.

    Args:
        beta: Exponent of the modulating factor (quality-focal style).
        loss_weight: Weight of the loss.
    """

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (A, C) logits of both, ``weight`` (A,) per prediction."""
        s = student_logits.float()
        p_t = teacher_logits.detach().float().sigmoid()
        scale = (s.sigmoid() - p_t).abs().pow(self.beta)
        loss = F.binary_cross_entropy_with_logits(s, p_t, reduction="none") * scale
        return self.loss_weight * weight_reduce_loss(loss.sum(dim=1), weight, "mean", avg_factor)


@MODELS.register_module()
class KDGIoULoss(nn.Module):
    """``1 - GIoU`` between student and teacher decoded boxes, weighted per box.

    Args:
        loss_weight: Weight of the loss.
        eps: Numerical guard of the GIoU computation.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self, student_boxes: Tensor, teacher_boxes: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (A, 4) x1y1x2y2 boxes of both, ``weight`` (A,)."""
        if student_boxes.shape[-1] != 4:
            raise ValueError("KDGIoULoss takes (A, 4) horizontal boxes, got "
                             f"{tuple(student_boxes.shape)}; for oriented boxes set "
                             "distill_cfg.kd_reg=dict(type='KDRotatedGDLoss')")
        giou = bbox_overlaps(student_boxes.float(), teacher_boxes.detach().float(), mode="giou",
                             is_aligned=True, eps=self.eps)
        return self.loss_weight * weight_reduce_loss(1 - giou, weight, "mean", avg_factor)


@MODELS.register_module()
class KDKLDivLoss(nn.Module):
    """Softmax KD: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` per prediction.

    Args:
        temperature: Softening temperature ``T``.
        loss_weight: Weight of the loss.
    """

    def __init__(self, temperature: float = 3.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"KDKLDivLoss: temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (R, C + 1) class logits of both, ``weight`` (R,)."""
        t = self.temperature
        log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
        log_p_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1) * t * t
        return self.loss_weight * weight_reduce_loss(kl, weight, "mean", avg_factor)


@MODELS.register_module()
class KDWeightedL1Loss(nn.Module):
    """L1 between student and teacher regression deltas, weighted per prediction.

    Args:
        loss_weight: Weight of the loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_deltas: Tensor, teacher_deltas: Tensor,
                weight: Tensor | None = None, avg_factor: float | Tensor | None = None) -> Tensor:
        """Loss from (R, D) deltas of both, ``weight`` (R,)."""
        loss = (student_deltas.float() - teacher_deltas.detach().float()).abs().sum(dim=1)
        return self.loss_weight * weight_reduce_loss(loss, weight, "mean", avg_factor)


@MODELS.register_module()
class KDRotatedGDLoss(nn.Module):
    """Oriented-box regression KD: a Gaussian distance (KLD by default) between student and
    teacher rotated boxes, through mmrotate's ``GDLoss``.

    Args:
        loss_type: ``'kld'``, ``'jd'``, ``'bcd'`` or ``'gwd'`` (see mmrotate's GDLoss).
        fun: Function applied to the distance (``'log1p'``, ``'sqrt'``, ``'none'``).
        tau: GDLoss's tau.
        loss_weight: Weight of the loss.
    """

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
