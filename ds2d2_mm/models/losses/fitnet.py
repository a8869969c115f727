"""FitNet hint loss on FPN levels, as detection KD uses it (a comparison method)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .stream_loss import (
    StreamLoss,
    check_levels,
    chosen_levels,
    left_out,
)


@MODELS.register_module()
class FitNetLoss(StreamLoss):
    """FitNet hint loss on FPN levels (Romero et al., "FitNets: Hints for Thin Deep Nets",
    ICLR 2015), in the form detection KD uses as its baseline.

    ``loss_fitnet = loss_weight * sum_l mean_{n,c,h,w} (r_l(S_l) - T_l)^2`` with ``r_l`` a
    learnable 1x1 convolution (with bias) per level, present even when the channels match (it is
    the method's regressor; the distiller's connector, :meth:`connector_cfg`). The paper's hint loss
    is ``1/2 ||T - r(S)||^2`` on one layer; for detectors the published baseline applies it to every
    FPN level with a mean reduction.

    Published defaults: RetinaNet and Faster R-CNN FitNet baselines of LutingWang/HEAD
    (``configs/_base_/models/fitnet_retina.py``, ``configs/kd/fitnet_r18_faster.py``): a 1x1
    ``Conv2d`` per level on all 5 FPN levels, ``MSELoss`` with ``weight=1.0``. MMRazor ships
    FitNets only for classification (``configs/distill/mmcls/fitnets``, ``L2Loss``, weight 10).

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        loss_weight: Weight of the summed hint loss (published 1.0).
        levels: Distilled level indices (``None``: all).
    """

    weight_keys = ("loss_weight",)

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 loss_weight: float = 1.0, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.levels = chosen_levels(levels, num_levels, "FitNetLoss")
        self.loss_weight = loss_weight

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """``loss_fitnet`` from the connected student levels (the regressors' outputs) and the
        teacher's, each (N, C_t, H_l, W_l); ``boxes`` and ``img_shape`` are not used."""
        check_levels("FitNetLoss", student_maps, teacher_maps, self.num_levels)
        loss = left_out(student_maps, self.levels)
        for i in self.levels:
            loss = loss + F.mse_loss(student_maps[i].float(), teacher_maps[i].detach().float())
        return dict(loss_fitnet=self.loss_weight * loss)

    def connector_cfg(self) -> dict:
        """The method's regressors: one 1x1 convolution with bias per level, also when the
        channels match."""
        return dict(type="FeatureAdapter", shared=False, identity=False, bias=True)
