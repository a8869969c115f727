"""PKD: distillation through the Pearson correlation of feature maps (a comparison method)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .stream_loss import (
    StreamLoss,
    align_connector_cfg,
    check_levels,
    chosen_levels,
    left_out,
)


def pkd_standardise(feat: Tensor, per_image: bool = False, eps: float = 1e-6) -> Tensor:
    """Each channel of a (N, C, H, W) map to zero mean and unit (unbiased) std,
    ``(x - mean) / (std + eps)``, over the batch and space (official) or over space per image.
    A single-value group (std undefined) gets std 0."""
    dims = (2, 3) if per_image else (0, 2, 3)
    count = math.prod(feat.shape[d] for d in dims)
    mean = feat.mean(dim=dims, keepdim=True)
    std = feat.var(dim=dims, keepdim=True, correction=1 if count > 1 else 0).sqrt()
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(StreamLoss):
    """PKD (Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson
    Correlation Coefficient", NeurIPS 2022), as the official implementation (MMRazor
    ``mmrazor/models/losses/pkd_loss.py``) computes it.

    ``loss_pkd = loss_weight * sum_l mean((z(S_l) - z(T_l))^2) / 2`` with ``z`` the per-channel
    standardisation of :func:`pkd_standardise` over the batch and space (N, H, W) together,
    unbiased std plus 1e-6 - equivalent to ``1 - r`` with ``r`` the Pearson correlation of each
    channel. ``per_image=True`` standardises each image's channel over (H, W) instead (not the
    published form).

    Published defaults (MMRazor ``configs/distill/mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_
    coco.py``, RetinaNet-X101 -> R50): ``loss_weight=10`` on the first four FPN levels
    (``levels=(0, 1, 2, 3)``, inherited from the Faster R-CNN config). Faster R-CNN
    (``pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco.py``) and MaskRCNN-Swin -> RetinaNet:
    ``loss_weight=6``, same levels.

    The published method needs equal channels (no adapter): the connector is then the identity;
    with other channels it is one 1x1 conv per level without bias (an extension).

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        loss_weight: Weight of the loss (published 10 for RetinaNet, 6 for Faster R-CNN).
        levels: Distilled level indices (``None``: all; published the first four).
        per_image: Standardise per image instead of over the batch.
    """

    weight_keys = ("loss_weight",)

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 loss_weight: float = 10.0, levels: Sequence[int] | None = (0, 1, 2, 3),
                 per_image: bool = False) -> None:
        super().__init__()
        self._connector = align_connector_cfg(student_channels, teacher_channels, num_levels,
                                              bias=False)
        self.num_levels = num_levels
        self.levels = chosen_levels(levels, num_levels, "PKDLoss")
        self.loss_weight = loss_weight
        self.per_image = per_image

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """``loss_pkd`` from the connected student levels and the teacher's, each
        (N, C_t, H_l, W_l); ``boxes`` and ``img_shape`` are not used."""
        check_levels("PKDLoss", student_maps, teacher_maps, self.num_levels)
        loss = left_out(student_maps, self.levels)
        for i in self.levels:
            z_s = pkd_standardise(student_maps[i].float(), self.per_image)
            z_t = pkd_standardise(teacher_maps[i].detach().float(), self.per_image)
            loss = loss + F.mse_loss(z_s, z_t) / 2
        return dict(loss_pkd=self.loss_weight * loss)

    def connector_cfg(self) -> dict:
        """The identity when the channels match (published), else a 1x1 convolution without bias
        per level (an extension)."""
        return dict(self._connector)
