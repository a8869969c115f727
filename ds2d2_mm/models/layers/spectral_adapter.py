"""The DS2D2 spectral adapter: a residual, band-wise correction of a feature map.

    x ──haar_dwt──> LL (N, C, h, w)      ── low transform  ──> dLL
                └─> LH/HL/HH (N, C, 3, h, w) ── high transform ──> dH
    y = x + gamma * haar_idwt(dLL, dH)                 (gamma: (C,), zero at initialisation)

Each transform is a channel LayerNorm and a bottleneck (1x1 conv C -> r, GELU, depthwise 3x3,
GELU, 1x1 conv r -> C); the three high bands share one bottleneck and are told apart by a learned
per-band embedding added after its first conv. With ``gamma = 0`` the adapter is exactly the
identity, so a pretrained backbone starts from its own features; ``gamma`` receives gradient from
the first step (the transforms are not zero-initialised), and the transforms learn once it moves.

For C = 1024 and r = 128 (the defaults for SAM3's trunk) the adapter has 534,656 parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .spectral import haar_dwt, haar_idwt

__all__ = ["ChannelLayerNorm", "SpectralAdapter"]

#: Number of Haar detail bands (LH, HL, HH).
NUM_HIGH_BANDS = 3
#: Initial spread of the per-band embeddings (that of ViT position embeddings).
BAND_EMBED_STD = 0.02


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map."""

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W), normalised over C at each location."""
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Bottleneck(nn.Module):
    """LayerNorm, 1x1 conv C -> r, GELU, depthwise 3x3, GELU, 1x1 conv r -> C."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(channels)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.spatial = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: Tensor, band_embed: Tensor | None = None) -> Tensor:
        """(B, C, h, w) -> (B, C, h, w); ``band_embed`` (B, r, 1, 1) is added after ``reduce``."""
        y = self.reduce(self.norm(x))
        if band_embed is not None:
            y = y + band_embed
        return self.expand(self.act(self.spatial(self.act(y))))


class SpectralAdapter(nn.Module):
    """Residual Haar-domain adapter, the identity at initialisation.

    Args:
        channels: C, channels of the adapted map.
        hidden_channels: r, width of the bottlenecks.
        init_scale: Initial value of the residual scale ``gamma`` (0 gives the identity).
    """

    def __init__(self, channels: int, hidden_channels: int = 128, init_scale: float = 0.0) -> None:
        super().__init__()
        self.low = _Bottleneck(channels, hidden_channels)
        self.high = _Bottleneck(channels, hidden_channels)
        self.band_embed = nn.Parameter(torch.zeros(NUM_HIGH_BANDS, hidden_channels))
        nn.init.trunc_normal_(self.band_embed, std=BAND_EMBED_STD)
        self.gamma = nn.Parameter(torch.full((channels,), float(init_scale)))

    def delta(self, x: Tensor) -> Tensor:
        """The correction before scaling: (N, C, H, W) -> (N, C, H, W)."""
        n, c, height, width = x.shape
        low, high = haar_dwt(x)  # (N, C, h, w), (N, C, 3, h, w)
        h, w = low.shape[-2:]
        d_low = self.low(low)
        bands = high.transpose(1, 2).reshape(n * NUM_HIGH_BANDS, c, h, w)
        embed = self.band_embed.repeat(n, 1)[..., None, None]  # (N * 3, r, 1, 1)
        d_high = self.high(bands, embed).reshape(n, NUM_HIGH_BANDS, c, h, w).transpose(1, 2)
        return haar_idwt(d_low, d_high, out_hw=(height, width))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W): ``x + gamma * delta(x)``."""
        return x + self.gamma.view(1, -1, 1, 1).to(x.dtype) * self.delta(x).to(x.dtype)
