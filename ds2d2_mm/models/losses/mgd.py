"""MGD: Masked Generative Distillation (a comparison method)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn

from .stream_loss import (
    StreamLoss,
    align_connector_cfg,
    check_levels,
    chosen_levels,
    left_out,
    per_level,
)


@MODELS.register_module()
class MGDLoss(StreamLoss):
    """Masked Generative Distillation (Yang et al., "Masked Generative Distillation", ECCV 2022),
    as the official code computes it (yzd-v/MGD, ``det/mmdet/distillation/losses/mgd.py``).

    Per level: a random mask ``M`` (N, 1, H, W) drops each position with probability
    ``lambda_mgd`` (``u ~ U[0, 1)``, ``M = 0 where u > 1 - lambda_mgd, else 1``), a generation
    block ``G`` (conv3x3-ReLU-conv3x3, with biases, one per level) rebuilds the teacher's map from
    the masked aligned student map, and
    ``loss_mgd = alpha_mgd * sum_l sum (G(S_l * M_l) - T_l)^2 / N``.
    The masks come from torch's global RNG on the features' device (:meth:`draw_masks`; the
    official code draws on the CPU), or are passed to :meth:`forward`.

    Published defaults (yzd-v/MGD ``det/configs/distillers/mgd/retina_rx101_64x4d_distill_retina_
    r50_fpn_2x_coco.py`` and MMRazor ``configs/distill/mmdet/mgd/mgd_fpn_retina_x101_retina_r50_
    2x_coco.py``, all 5 levels): ``alpha_mgd=2e-5, lambda_mgd=0.65``. Faster R-CNN student
    (``cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py``):
    ``alpha_mgd=5e-7, lambda_mgd=0.45``, ``levels=(0, 1, 2, 3)``.

    Args:
        student_channels: Student FPN channels (int or per level); a 1x1 align conv (with bias)
            per level when they differ from the teacher's (the connector), else the identity.
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        alpha_mgd: Weight of the loss.
        lambda_mgd: Masked ratio, in [0, 1].
        levels: Distilled level indices (``None``: all).
    """

    weight_keys = ("alpha_mgd",)

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 alpha_mgd: float = 0.00002, lambda_mgd: float = 0.65,
                 levels: Sequence[int] | None = None) -> None:
        super().__init__()
        if not 0.0 <= lambda_mgd <= 1.0:
            raise ValueError(f"MGDLoss: lambda_mgd (masked ratio) must be in [0, 1], "
                             f"got {lambda_mgd!r}")
        self._connector = align_connector_cfg(student_channels, teacher_channels, num_levels,
                                              bias=True)
        self.num_levels = num_levels
        self.levels = chosen_levels(levels, num_levels, "MGDLoss")
        t_ch = per_level(teacher_channels, num_levels, "teacher")
        self.generation = nn.ModuleList(
            nn.Sequential(nn.Conv2d(t_ch[i], t_ch[i], kernel_size=3, padding=1),
                          nn.ReLU(inplace=True),
                          nn.Conv2d(t_ch[i], t_ch[i], kernel_size=3, padding=1))
            for i in self.levels)
        self.alpha_mgd = alpha_mgd
        self.lambda_mgd = lambda_mgd

    def draw_masks(self, teacher: Sequence[Tensor]) -> list[Tensor]:
        """One random keep-mask (N, 1, H_l, W_l) of 0/1 per distilled level, in level order."""
        masks = []
        for i in self.levels:
            n, _, h, w = teacher[i].shape
            u = torch.rand((n, 1, h, w), device=teacher[i].device)
            masks.append(torch.where(u > 1 - self.lambda_mgd, 0.0, 1.0))
        return masks

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int],
                masks: Sequence[Tensor] | None = None) -> dict[str, Tensor]:
        """``loss_mgd``.

        Args:
            student_maps: Connected (aligned) student levels, each (N, C_t, H_l, W_l).
            teacher_maps: Teacher levels, each (N, C_t, H_l, W_l).
            boxes: Not used.
            img_shape: Not used.
            masks: Keep-masks (N, 1, H_l, W_l) per distilled level (default: :meth:`draw_masks`).
        """
        check_levels("MGDLoss", student_maps, teacher_maps, self.num_levels)
        masks = self.draw_masks(teacher_maps) if masks is None else list(masks)
        if len(masks) != len(self.levels):
            raise ValueError(f"MGDLoss: {len(masks)} masks for {len(self.levels)} levels")
        loss = left_out(student_maps, self.levels)
        for j, i in enumerate(self.levels):
            t = teacher_maps[i].detach().float()
            new = self.generation[j](student_maps[i].float() * masks[j].to(t.dtype)).float()
            loss = loss + (new - t).pow(2).sum() / t.shape[0]
        return dict(loss_mgd=self.alpha_mgd * loss)

    def connector_cfg(self) -> dict:
        """MGD's align layer: the identity when the channels match, else a 1x1 convolution with
        bias per level."""
        return dict(self._connector)
