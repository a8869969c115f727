"""Simple feature pyramid (ViTDet / SAM3 neck style) from one single-scale map.

Each scale factor ``s`` turns the (N, C, H, W) map into one level of (H * s, W * s):

- ``s = 2 ** k > 1``: ``k`` stride-2 transposed convolutions, each halving the channels, with a
  GELU between them (SAM3's ``Sam3DualViTDetNeck``: scale 4 gives C / 4 channels);
- ``s = 1``: the map itself;
- ``s = 2 ** -k < 1``: ``k`` 2x2 max-pools.

SAM3's own neck then projects every level to 256 channels with a 1x1 and a 3x3 conv. Here that
projection is optional (``out_channels``): fed to an mmdet ``FPN``, whose lateral 1x1 and output
3x3 convs do the same job, the levels are best left at their native widths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["SimpleFeaturePyramid"]


def _level(channels: int, scale: float, out_channels: int | None) -> tuple[nn.Sequential, int]:
    """One pyramid branch for ``scale`` and the number of channels it outputs."""
    steps = math.log2(scale)
    if scale <= 0 or steps != round(steps):
        raise ValueError(f"pyramid scale factors must be powers of two, got {scale}")
    steps = int(round(steps))
    layers: list[nn.Module] = []
    width = channels
    for i in range(steps):  # upsampling
        if i:
            layers.append(nn.GELU())
        layers.append(nn.ConvTranspose2d(width, width // 2, kernel_size=2, stride=2))
        width //= 2
    layers += [nn.MaxPool2d(kernel_size=2, stride=2) for _ in range(-steps)]  # downsampling
    if out_channels is not None:
        layers += [
            nn.Conv2d(width, out_channels, kernel_size=1),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        ]
        width = out_channels
    return nn.Sequential(*layers), width


class SimpleFeaturePyramid(nn.Module):
    """Levels at ``scale_factors`` of a single-scale map, finest first.

    Args:
        in_channels: C of the input map.
        scale_factors: Powers of two in strictly decreasing order, e.g. ``(2.0, 1.0, 0.5)``.
        out_channels: Project every level to this width (SAM3-neck style); ``None`` keeps the
            native widths ``C / s`` for ``s > 1`` and ``C`` otherwise.

    Attributes:
        out_channels: Channels of each output level, finest first.
    """

    def __init__(
        self,
        in_channels: int,
        scale_factors: Sequence[float] = (2.0, 1.0, 0.5),
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        scales = tuple(float(s) for s in scale_factors)
        if not scales or any(a <= b for a, b in zip(scales, scales[1:])):
            raise ValueError(
                f"scale_factors must be non-empty and strictly decreasing (finest level first, "
                f"as mmdet's FPN expects), got {tuple(scale_factors)}"
            )
        self.scale_factors = scales
        branches = [_level(in_channels, s, out_channels) for s in scales]
        self.levels = nn.ModuleList(branch for branch, _ in branches)
        self.out_channels: tuple[int, ...] = tuple(width for _, width in branches)

    def strides(self, input_stride: float) -> tuple[float, ...]:
        """Stride of each level in pixels when the input map has stride ``input_stride``."""
        return tuple(input_stride / s for s in self.scale_factors)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(N, C, H, W) -> one (N, C_i, H * s_i, W * s_i) map per scale (floor for pooling)."""
        return tuple(level(x) for level in self.levels)
