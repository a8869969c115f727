"""``SAM3ViTBackbone``: SAM3's vision trunk, partially fine-tuned, as an mmdet backbone.

    images (N, 3, H, W) ──trunk──> (N, C, H/14, W/14) ──SpectralAdapter──> same shape
        ──SimpleFeaturePyramid──> one map per scale factor ──> mmdet FPN (the neck) ──> head

Principles: change little, protect the backbone, add capability incrementally.

- Freeze policy: the whole trunk is frozen except its last ``num_trainable_blocks`` blocks
  (default 6 of 32: 83.4M of 446.2M parameters, 18.7%; the exact share is logged at build and
  kept in :attr:`SAM3ViTBackbone.trainable_share`). Frozen blocks are kept in eval mode (no drop
  path) and the leading frozen part runs under ``torch.no_grad()``; the trainable tail uses
  activation checkpointing. ``num_trainable_blocks >= depth`` fine-tunes the whole trunk, stem
  included. The policy follows ``requires_grad`` at run time, so a hook may change it
  (:class:`ds2d2_mm.engine.hooks.progressive_unfreeze_hook.ProgressiveUnfreezeHook`) and then call
  ``model.train()``.
- The spectral adapter (fully trained, the identity at initialisation) and the pyramid are new.

Default pyramid scales ``(2, 1, 0.5)``, strides ``(7, 14, 28)``; with an FPN adding two extra
stride-2 levels the detector sees strides ``(7, 14, 28, 56, 112)``, the P3-P7 layout RetinaNet is
tuned for (8 ... 128). At 1008 px (800 px DIOR images upscaled by 1.26) the finest level is
144 x 144, an effective stride of 5.6 px on the original image, and the smallest anchors (4 x
stride) are 22 px on DIOR. SAM3's own neck has a further stride-3.5 level (scale 4), available as
``scale_factors=(4.0, 2.0, 1.0, 0.5)``: it quadruples the anchors (0.99M instead of 0.25M per
image) and, measured on an H200 (batch 2, 1008 px, bf16 autocast, last 6 blocks trained, FPN +
RetinaNet-head convolutions as a plain-torch stand-in without anchor assignment), raises the
step from 74-88 ms to 88-93 ms and the peak memory from 3.3 to 4.6 GiB; pyramid + FPN + head
alone go from 13-21 ms to 23 ms. The adapter adds at most a few ms (trunk step 61-68 ms with or
without it). The default takes the cheaper layout; whether the stride-3.5 level pays for itself in
small-object AP on DIOR has not been measured yet (it needs a real training run).

For self-distillation against forgetting (the frozen original trunk teaching the fine-tuned one
on the trunk output, before the adapter):

    teacher = backbone.build_frozen_trunk()            # before training, or from the checkpoint
    t = run_trunk(teacher, images)                      # (N, 1024, H/14, W/14), no autograd
    with record_call(backbone, "forward_trunk") as rec:  # ds2d2_mm.utils.record_call
        feats = detector.extract_feat(images)
    s = rec.output                                      # (N, 1024, H/14, W/14), fine-tuned

Hold the teacher outside the module tree (as mmdet's ``KnowledgeDistillationSingleStageDetector``
does) so that it stays out of ``state_dict``, the optimizer and DDP.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..layers.spectral_adapter import SpectralAdapter
from ..necks.simple_pyramid import SimpleFeaturePyramid
from .sam3_trunk import (
    build_sam3_trunk,
    load_sam3_trunk,
    run_trunk,
    set_trunk_trainable_blocks,
    trunk_param_groups,
)

__all__ = ["SAM3ViTBackbone"]

_MILLION = 1e6


def _count(params: Sequence[nn.Parameter] | Any) -> int:
    return sum(p.numel() for p in params)


@MODELS.register_module()
class SAM3ViTBackbone(BaseModule):
    """SAM3's ViT trunk + spectral adapter + simple feature pyramid.

    Args:
        arch: Trunk size preset (``"sam3"``: the released model; ``"tiny"``: tests).
        checkpoint: Local path of SAM3's ``sam3.pt`` (or of an exported trunk). ``None`` keeps
            the random initialisation (tests, or weights loaded later through ``load_from``).
        num_trainable_blocks: N, how many of the last trunk blocks are trained (0: none;
            ``>= depth``: the whole trunk, stem included).
        use_act_checkpoint: Activation checkpointing in the trainable blocks.
        trunk_cfg: Overrides of the preset, any ``sam3.model.vitdet.ViT`` argument (e.g.
            ``dict(img_size=672)``; ``drop_path_rate`` acts in the trainable blocks only).
        adapter_cfg: Keyword arguments of :class:`SpectralAdapter` (e.g.
            ``dict(hidden_channels=128)``); ``None`` leaves the adapter out.
        scale_factors: Pyramid levels relative to the trunk's stride 14, finest first.
        out_channels: Channel width of every pyramid level, or ``None`` for native widths.
        init_cfg: mmengine init config of the new layers (the trunk is loaded, not initialised).

    Attributes:
        out_channels: Channels of the output maps, finest first (an FPN's ``in_channels``).
        strides: Stride in pixels of each output map (use them for anchors / RoI extractors).
        trainable_share: Trainable fraction of the trunk's parameters after the freeze policy.
    """

    def __init__(
        self,
        arch: str = "sam3",
        checkpoint: str | None = None,
        num_trainable_blocks: int = 6,
        use_act_checkpoint: bool = True,
        trunk_cfg: dict | None = None,
        adapter_cfg: dict | None = None,
        scale_factors: Sequence[float] = (2.0, 1.0, 0.5),
        out_channels: int | None = None,
        init_cfg: dict | list | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = arch
        self.checkpoint = checkpoint
        self.trunk_cfg = dict(trunk_cfg or {})
        self.use_act_checkpoint = use_act_checkpoint
        self.trunk = build_sam3_trunk(arch, use_act_checkpoint, **self.trunk_cfg)
        if checkpoint is not None:
            dropped = load_sam3_trunk(self.trunk, checkpoint)
            note = f" ({len(dropped)} RoPE tables recomputed for this img_size)" if dropped else ""
            print_log(f"SAM3ViTBackbone: loaded the trunk from {checkpoint}{note}", "current")
        channels = self.trunk.channel_list[-1]
        patch = self.trunk.patch_embed.proj.kernel_size[0]
        adapter_cfg = dict(hidden_channels=128) if adapter_cfg is None else adapter_cfg
        self.adapter = SpectralAdapter(channels, **adapter_cfg) if adapter_cfg else nn.Identity()
        self.pyramid = SimpleFeaturePyramid(channels, scale_factors, out_channels)
        self.out_channels = self.pyramid.out_channels
        self.strides = self.pyramid.strides(patch)
        self.set_num_trainable_blocks(num_trainable_blocks)
        print_log(self.describe(), "current")

    # ----------------------------------------------------------------- freeze policy
    @property
    def depth(self) -> int:
        """Number of trunk blocks."""
        return len(self.trunk.blocks)

    def set_num_trainable_blocks(self, num: int) -> None:
        """Apply the freeze policy: train the last ``num`` trunk blocks (all when ``>= depth``).

        Only the trunk's ``requires_grad`` flags change; the adapter and pyramid are left as they
        are. Call ``model.train()`` afterwards to put the newly frozen blocks in eval mode.
        """
        self.num_trainable_blocks = set_trunk_trainable_blocks(self.trunk, num)

    @property
    def trainable_share(self) -> float:
        """Fraction of the trunk's parameters that currently require gradients."""
        params = list(self.trunk.parameters())
        return _count(p for p in params if p.requires_grad) / max(_count(params), 1)

    def describe(self) -> str:
        """One line with the parameter counts and the exact trainable share of the trunk."""
        trunk = list(self.trunk.parameters())
        trainable = _count(p for p in trunk if p.requires_grad)
        return (
            f"SAM3ViTBackbone[{self.arch}]: trunk {_count(trunk) / _MILLION:.2f}M parameters, "
            f"{trainable / _MILLION:.2f}M trainable ({100 * self.trainable_share:.2f}%, last "
            f"{self.num_trainable_blocks} of {self.depth} blocks); spectral adapter "
            f"{_count(self.adapter.parameters()) / _MILLION:.3f}M; pyramid "
            f"{_count(self.pyramid.parameters()) / _MILLION:.2f}M (scales "
            f"{self.pyramid.scale_factors}, strides {self.strides}, channels {self.out_channels})"
        )

    def train(self, mode: bool = True) -> SAM3ViTBackbone:
        """Set train / eval mode; trunk parts without trainable parameters always stay in eval."""
        super().train(mode)
        modules = [
            self.trunk.patch_embed,
            self.trunk.ln_pre,
            *self.trunk.blocks,
            self.trunk.ln_post,
        ]
        groups = trunk_param_groups(self.trunk)
        stem, blocks, post = groups[0], groups[1:-1], groups[-1]
        for module, params in zip(modules, [stem, stem, *blocks, post]):
            module.train(mode and any(p.requires_grad for p in params))
        return self

    # ----------------------------------------------------------------- forward
    def forward_trunk(self, x: Tensor) -> Tensor:
        """Trunk features before the adapter: (N, 3, H, W) -> (N, C, ceil(H/14), ceil(W/14)).

        ``H, W`` at most the trunk's ``img_size`` (smaller inputs are padded for the trunk and
        the output cropped back).
        """
        return run_trunk(self.trunk, x, self.use_act_checkpoint)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(N, 3, H, W) -> pyramid maps (N, C_i, H / stride_i, W / stride_i), finest first."""
        return self.pyramid(self.adapter(self.forward_trunk(x)))

    # ----------------------------------------------------------------- original trunk
    def build_frozen_trunk(self) -> nn.Module:
        """A frozen (eval, no gradients) copy of the original, not fine-tuned, trunk.

        Loaded from :attr:`checkpoint` when one is configured (the original weights, whatever
        training did since); otherwise a deep copy of the current trunk, so call it before
        training starts. Run it with :func:`ds2d2_mm.models.backbones.run_trunk` to get the same
        (N, C, H/14, W/14) map as :meth:`forward_trunk`.
        """
        if self.checkpoint is not None:
            trunk = build_sam3_trunk(self.arch, False, **self.trunk_cfg)
            load_sam3_trunk(trunk, self.checkpoint)
        else:
            trunk = copy.deepcopy(self.trunk)
        device = next(self.trunk.parameters()).device
        return trunk.to(device).requires_grad_(False).eval()
