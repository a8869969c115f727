"""Explicit stream: wavelet sub-band feature matching weighted by DISW maps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor

from ..layers.disw import disw_pyramid
from ..layers.spectral import build_decomposer
from .stream_loss import StreamLoss, check_levels


@MODELS.register_module()
class DISWLoss(StreamLoss):
    """Explicit stream of DS2D2.

    For each FPN level ``l``: ``lambda_low * mean(w * (LL_s - LL_t)^2) +
    lambda_high * mean(w * (H_s - H_t)^2)``, with the student level mapped to the teacher's
    channels by the distiller's connector (a shared 1x1 convolution without bias, as published:
    :meth:`connector_cfg`), both decomposed by the configured decomposer, and ``w`` the DISW map
    of the ground-truth boxes on the sub-band grid. Summed over levels.

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        lambda_low: Weight of the low band term.
        lambda_high: Weight of the high bands term.
        shared_adapter: One connector conv for all levels (published) or one per level.
        decomposer: ``'haar'`` (default), a pywt wavelet name, ``'fft'`` or a decomposer config.
        use_disw: Weight by DISW maps (``False`` gives plain MSE, for ablations).
        identity_adapter: An identity connector (no parameters; equal channels needed), for
            self-distillation of a model from a frozen copy of itself.
        adapter_bias: Give the 1x1 connector a bias (published: no bias).
    """

    weight_keys = ("lambda_low", "lambda_high")
    #: ``forward`` takes the teacher maps' bands computed elsewhere (``teacher_bands``).
    takes_teacher_bands = True

    def __init__(
        self,
        student_channels: int | Sequence[int],
        teacher_channels: int | Sequence[int],
        num_levels: int,
        lambda_low: float = 1.0,
        lambda_high: float = 1.0,
        shared_adapter: bool = True,
        decomposer: str | dict | None = "haar",
        use_disw: bool = True,
        identity_adapter: bool = False,
        adapter_bias: bool = False,
    ) -> None:
        super().__init__()
        self.shared_adapter = shared_adapter
        self.identity_adapter = identity_adapter
        self.adapter_bias = adapter_bias
        self.decomposer = build_decomposer(decomposer)
        self.lambda_low = lambda_low
        self.lambda_high = lambda_high
        self.use_disw = use_disw
        self.num_levels = num_levels

    def connector_cfg(self) -> dict:
        """The published connector, one 1x1 convolution shared by every level and without bias
        (or what ``shared_adapter``, ``identity_adapter`` and ``adapter_bias`` ask for)."""
        return dict(type="FeatureAdapter", shared=self.shared_adapter,
                    identity=self.identity_adapter, bias=self.adapter_bias)

    def forward(
        self,
        student_maps: Sequence[Tensor],
        teacher_maps: Sequence[Tensor],
        boxes: Sequence[Tensor],
        img_shape: tuple[int, int],
        teacher_bands: Sequence[tuple[Tensor, Tensor]] | None = None,
    ) -> dict[str, Tensor]:
        """Explicit loss terms.

        Args:
            student_maps: Connected student levels, each (N, C_t, H_l, W_l).
            teacher_maps: Teacher levels, each (N, C_t, H_l, W_l) (no gradient needed).
            boxes: Per image ground-truth boxes in input pixels, (k_i, 4) x1y1x2y2 or (k_i, 5)
                cx, cy, w, h, angle (oriented; DISW then uses the oriented rule).
            img_shape: (H, W) of the batch input.
            teacher_bands: ``self.decomposer(t)`` of each fp32 teacher level, when the caller
                has them already (the distiller shares them with the high-frequency
                amplifier); ``None``: computed here.

        Returns:
            ``loss_exp_low`` and ``loss_exp_high``, fp32 scalars.
        """
        check_levels("DISWLoss", student_maps, teacher_maps, self.num_levels)
        if teacher_bands is None:
            teacher_bands = [self.decomposer(t.float()) for t in teacher_maps]
        elif len(teacher_bands) != len(teacher_maps):
            raise ValueError(f"DISWLoss: {len(teacher_bands)} teacher band sets for "
                             f"{len(teacher_maps)} levels")
        bands = [(self.decomposer(s.float()), tb)
                 for s, tb in zip(student_maps, teacher_bands, strict=True)]
        grids = [tuple(low_s.shape[-2:]) for (low_s, _), _ in bands]
        if self.use_disw:
            ws = disw_pyramid(boxes, img_shape, grids)  # (k, 5) boxes take the oriented rule
        else:
            ws = [student_maps[0].new_ones((student_maps[0].shape[0], 1, *g), dtype=torch.float32)
                  for g in grids]
        loss_low = student_maps[0].new_zeros((), dtype=torch.float32)
        loss_high = student_maps[0].new_zeros((), dtype=torch.float32)
        for ((low_s, high_s), (low_t, high_t)), w in zip(bands, ws, strict=True):
            w = w.to(low_s.device)
            loss_low = loss_low + (w * (low_s - low_t.detach()).pow(2)).mean()
            loss_high = loss_high + (w.unsqueeze(2) * (high_s - high_t.detach()).pow(2)).mean()
        return dict(loss_exp_low=self.lambda_low * loss_low,
                    loss_exp_high=self.lambda_high * loss_high)
