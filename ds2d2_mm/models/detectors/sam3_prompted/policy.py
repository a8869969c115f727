"""The spectral adapter inside SAM3's ViT, and what trains in SAM3's full image model.

    images -> ViT trunk -> [.., (B, C, h, w)] --TrunkSpectralAdapter--> neck -> fusion encoder
           -> decoder (+ presence token) -> box / score heads, segmentation head

The adapter (:class:`ds2d2_mm.models.backbones.SpectralAdapter`, residual, zero-initialised scale:
exactly the identity at the start) rewrites the trunk's last map through a forward hook on the
trunk, so the trunk and every other part keep their own parameter names (``sam3.pt`` keys) and
code; the adapter's parameters sit at ``backbone.vision_backbone.spectral_adapter.*``.

Freeze policy (:func:`apply_freeze_policy`): everything is frozen but

- the last ``num_trainable_blocks`` ViT blocks (the rule of ``SAM3ViTBackbone``,
  :func:`ds2d2_mm.models.backbones.sam3_trunk.set_trunk_trainable_blocks`) and the adapter;
- SAM3's detection / segmentation head (:data:`SAM3_HEAD_PREFIXES`: the decoder's box head,
  the presence token and its head, the dot-product scoring, the segmentation head).

The text encoder, the geometry (point / box) encoder, the vision-language fusion encoder, the
decoder's layers and the neck stay frozen, and :func:`set_frozen_modes` keeps every module
without a trainable parameter in eval mode (no dropout, no drop path), whatever ``train()`` did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from ...backbones.sam3_trunk import set_trunk_trainable_blocks
from ...layers.spectral_adapter import SpectralAdapter

__all__ = [
    "ADAPTER_PREFIX",
    "SAM3_HEAD_PREFIXES",
    "TRUNK_PREFIX",
    "TrunkSpectralAdapter",
    "apply_freeze_policy",
    "insert_spectral_adapter",
    "set_frozen_modes",
    "trainable_summary",
]

#: Where the ViT trunk sits in ``Sam3Image``.
TRUNK_PREFIX = "backbone.vision_backbone.trunk"
#: Where :func:`insert_spectral_adapter` puts the adapter in ``Sam3Image``.
ADAPTER_PREFIX = "backbone.vision_backbone.spectral_adapter"
#: SAM3's detection / segmentation head in ``Sam3Image``: box head, presence token and head,
#: score (dot product of queries and prompt), segmentation head.
SAM3_HEAD_PREFIXES: tuple[str, ...] = (
    "transformer.decoder.bbox_embed",
    "transformer.decoder.presence_token",
    "transformer.decoder.presence_token_head",
    "transformer.decoder.presence_token_out_norm",
    "dot_prod_scoring",
    "segmentation_head",
)
#: The frozen parts, by name, for the summary.
_FROZEN_PARTS = {
    "text encoder": "backbone.language_backbone",
    "geometry encoder": "geometry_encoder",
    "fusion encoder": "transformer.encoder",
    "decoder layers": "transformer.decoder.layers",
    "neck": "backbone.vision_backbone.convs",
}


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class TrunkSpectralAdapter(SpectralAdapter):
    """A :class:`SpectralAdapter` applied to the last map a ViT trunk returns (a forward hook)."""

    def trunk_hook(self, module: nn.Module, inputs: tuple, outputs: list[Tensor]) -> list[Tensor]:
        """Forward hook of the trunk: ``[..., x]`` -> ``[..., adapter(x)]``, x (B, C, h, w)."""
        return [*outputs[:-1], self(outputs[-1])]


def insert_spectral_adapter(
    model: nn.Module, hidden_channels: int = 128, init_scale: float = 0.0
) -> TrunkSpectralAdapter:
    """Put a spectral adapter after the ViT trunk of ``model`` (a ``Sam3Image``).

    Args:
        model: SAM3's image model; changed in place.
        hidden_channels: r, the adapter's bottleneck width (128: 0.53M parameters at C=1024).
        init_scale: Initial residual scale (0: the identity at the start).

    Raises:
        ValueError: the model already has an adapter.
    """
    vision = model.backbone.vision_backbone
    if hasattr(vision, "spectral_adapter"):
        raise ValueError("this SAM3 model already has a spectral adapter")
    trunk = vision.trunk
    adapter = TrunkSpectralAdapter(trunk.channel_list[-1], hidden_channels, init_scale)
    device = next(trunk.parameters()).device
    vision.add_module("spectral_adapter", adapter.to(device))
    trunk.register_forward_hook(adapter.trunk_hook)
    return adapter


def apply_freeze_policy(
    model: nn.Module, num_trainable_blocks: int, train_head: bool = True
) -> None:
    """Freeze ``model`` (a ``Sam3Image``) but its last ViT blocks, the adapter and the head.

    Args:
        model: SAM3's image model, with or without an adapter.
        num_trainable_blocks: N, the last ViT blocks that train (``>= depth``: the whole ViT).
        train_head: Whether SAM3's head (:data:`SAM3_HEAD_PREFIXES`) may train.
    """
    model.requires_grad_(False)
    vision = model.backbone.vision_backbone
    set_trunk_trainable_blocks(vision.trunk, num_trainable_blocks)
    if hasattr(vision, "spectral_adapter"):
        vision.spectral_adapter.requires_grad_(True)
    for name, param in model.named_parameters():
        if train_head and _under(name, SAM3_HEAD_PREFIXES):
            param.requires_grad_(True)
    set_frozen_modes(model)


def set_frozen_modes(module: nn.Module) -> None:
    """Put every sub-module whose parameters are all frozen in eval mode (recursively).

    Modules with a trainable parameter keep their mode and are descended into; modules without
    parameters keep the mode of their parent.
    """
    for child in module.children():
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            child.eval()
        else:
            set_frozen_modes(child)


def _count(params: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


def trainable_summary(model: nn.Module, prefixes: Sequence[str] = ()) -> str:
    """One line: trainable / total parameters of ``model`` and of its parts.

    Args:
        model: SAM3's image model.
        prefixes: Name prefixes to report as well (e.g. a stage's trainable set).
    """
    params = dict(model.named_parameters())
    trainable = _count(p for p in params.values() if p.requires_grad)
    total = _count(params.values())

    def part(prefix: str) -> tuple[int, int]:
        chosen = [p for n, p in params.items() if _under(n, [prefix])]
        return _count(p for p in chosen if p.requires_grad), _count(chosen)

    parts = {"ViT": TRUNK_PREFIX, "adapter": ADAPTER_PREFIX}
    lines = [
        f"SAM3 image model: {trainable / 1e6:.3f}M of {total / 1e6:.3f}M parameters trainable "
        f"({100 * trainable / max(total, 1):.2f}%)"
    ]
    details = []
    for label, prefix in parts.items():
        t, n = part(prefix)
        details.append(f"{label} {t / 1e6:.3f}M/{n / 1e6:.3f}M")
    head = [part(p) for p in SAM3_HEAD_PREFIXES]
    details.append(
        f"head {sum(t for t, _ in head) / 1e6:.3f}M/{sum(n for _, n in head) / 1e6:.3f}M"
    )
    for label, prefix in _FROZEN_PARTS.items():
        t, n = part(prefix)
        details.append(f"{label} {t / 1e6:.3f}M/{n / 1e6:.3f}M")
    for prefix in prefixes:
        t, n = part(prefix)
        details.append(f"{prefix} {t / 1e6:.3f}M/{n / 1e6:.3f}M")
    return lines[0] + " [trainable/total: " + ", ".join(details) + "]"
