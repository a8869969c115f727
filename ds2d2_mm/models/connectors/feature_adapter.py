"""The connector between student and teacher maps: a learnable 1x1 convolution per FPN level (or
one shared by all levels), as MMRazor calls such a part."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class FeatureAdapter(nn.Module):
    """Learnable 1x1 convolutions from student to teacher channels.

    Args:
        in_channels: Student channels per level (an int for all levels).
        out_channels: Teacher channels per level (an int for all levels).
        num_levels: Number of FPN levels.
        shared: One convolution for every level (as published) or one per level. A shared
            adapter needs the same channels on every level.
        identity: No convolution: the levels pass unchanged (student and teacher channels must
            be equal), e.g. when a model is distilled from a frozen copy of itself.
        bias: Give the convolutions a bias (the published adapter has none).
    """

    def __init__(
        self,
        in_channels: int | Sequence[int],
        out_channels: int | Sequence[int],
        num_levels: int,
        shared: bool = True,
        identity: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        ins = [in_channels] * num_levels if isinstance(in_channels, int) else list(in_channels)
        outs = [out_channels] * num_levels if isinstance(out_channels, int) else list(out_channels)
        if len(ins) != num_levels or len(outs) != num_levels:
            raise ValueError(
                f"FeatureAdapter: {len(ins)} student and {len(outs)} teacher channel entries "
                f"for {num_levels} levels"
            )
        if shared and (len(set(ins)) > 1 or len(set(outs)) > 1):
            raise ValueError(
                "FeatureAdapter: shared=True needs equal channels on every level "
                f"(student {ins}, teacher {outs}); set distill_cfg.explicit.shared_adapter=False"
            )
        if identity and ins != outs:
            raise ValueError(
                f"FeatureAdapter: identity=True needs equal student {ins} and teacher {outs} "
                "channels")
        self.shared = shared
        self.identity = identity
        n_convs = 0 if identity else 1 if shared else num_levels
        self.convs = nn.ModuleList(
            nn.Conv2d(ins[i], outs[i], kernel_size=1, bias=bias) for i in range(n_convs))

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Map each level (N, C_s, H, W) to (N, C_t, H, W)."""
        if self.identity:
            return list(feats)
        return [self.convs[0 if self.shared else i](f) for i, f in enumerate(feats)]


def align_to(feats: Sequence[Tensor], refs: Sequence[Tensor]) -> list[Tensor]:
    """Resize each of ``feats`` bilinearly to the spatial size of the matching ``refs`` level."""
    out = []
    for f, r in zip(feats, refs, strict=True):
        out.append(f if f.shape[-2:] == r.shape[-2:] else
                   F.interpolate(f, size=r.shape[-2:], mode="bilinear", align_corners=False))
    return out
