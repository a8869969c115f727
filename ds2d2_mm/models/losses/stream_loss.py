"""The base of the losses that can form the explicit stream, and their per-level helpers.

An explicit-stream loss compares the student's FPN maps, already brought to the teacher's
channels and grids by the distiller's connector, with the teacher's maps:
``forward(student_maps, teacher_maps, boxes, img_shape) -> {name: fp32 scalar}``. It declares

- :meth:`StreamLoss.connector_cfg`: the connector it needs between the maps (the distiller builds
  and owns it, so its weights are saved as ``connector.*``);
- :attr:`StreamLoss.weight_keys`: its arguments that are term weights (``distill_cfg`` refuses a
  negative or non-finite value for them).

The distiller passes ``student_channels``, ``teacher_channels`` and ``num_levels`` to every such
loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["StreamLoss", "align_connector_cfg", "check_levels", "chosen_levels", "left_out",
           "per_level"]


class StreamLoss(nn.Module):
    """Base of the explicit-stream losses (see the module docstring)."""

    #: Arguments of the class that weight its terms (checked finite and >= 0).
    weight_keys: tuple[str, ...] = ()

    def connector_cfg(self) -> dict:
        """The connector config (``FeatureAdapter`` arguments but the channels and level count,
        which the distiller sets)."""
        raise NotImplementedError

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """Named fp32 loss terms.

        Args:
            student_maps: Connected student levels, each (N, C_t, H_l, W_l).
            teacher_maps: Teacher levels, each (N, C_t, H_l, W_l) (no gradient needed).
            boxes: Per image ground-truth boxes in input pixels, (k_i, 4) x1y1x2y2 or (k_i, 5)
                cx, cy, w, h, angle.
            img_shape: (H, W) of the batch input.
        """
        raise NotImplementedError


def per_level(channels: int | Sequence[int], num_levels: int, what: str) -> list[int]:
    """Channels per level from an int (all levels) or a sequence, checked against the count."""
    out = [channels] * num_levels if isinstance(channels, int) else [int(c) for c in channels]
    if len(out) != num_levels:
        raise ValueError(f"{what}: {len(out)} channel entries for {num_levels} levels")
    return out


def chosen_levels(levels: Sequence[int] | None, num_levels: int, owner: str) -> tuple[int, ...]:
    """The distilled level indices (all when ``levels`` is None), checked."""
    chosen = tuple(range(num_levels)) if levels is None else tuple(int(i) for i in levels)
    if not chosen or len(set(chosen)) != len(chosen) or any(
            not 0 <= i < num_levels for i in chosen):
        raise ValueError(f"{owner}: levels={levels!r} must be distinct indices of the "
                         f"{num_levels} FPN levels (0 to {num_levels - 1}); set "
                         "distill_cfg.explicit.levels")
    return chosen


def align_connector_cfg(student_channels: int | Sequence[int],
                        teacher_channels: int | Sequence[int], num_levels: int,
                        bias: bool) -> dict:
    """Identity when the channels match on every level, else one 1x1 conv per level."""
    same = (per_level(student_channels, num_levels, "student")
            == per_level(teacher_channels, num_levels, "teacher"))
    return dict(type="FeatureAdapter", shared=False, identity=same, bias=bias)


def check_levels(owner: str, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                 num_levels: int) -> None:
    """Raise ``ValueError`` unless both lists have ``num_levels`` maps of equal shapes."""
    if len(student_maps) != num_levels or len(teacher_maps) != num_levels:
        raise ValueError(f"{owner}: got {len(student_maps)} student and {len(teacher_maps)} "
                         f"teacher levels for num_levels={num_levels}")
    for i, (s, t) in enumerate(zip(student_maps, teacher_maps, strict=True)):
        if s.shape != t.shape:
            raise ValueError(f"{owner}: level {i} student {tuple(s.shape)} and teacher "
                             f"{tuple(t.shape)} differ (the connector maps channels and grids)")


def left_out(student_maps: Sequence[Tensor], chosen: tuple[int, ...]) -> Tensor:
    """Zero-weighted sum of the student maps of the levels not distilled: the connector's
    parameters of those levels then take part in every backward (DDP without
    ``find_unused_parameters``)."""
    zero = student_maps[0].new_zeros((), dtype=torch.float32)
    for i, f in enumerate(student_maps):
        if i not in chosen:
            zero = zero + 0.0 * f.float().sum()
    return zero
