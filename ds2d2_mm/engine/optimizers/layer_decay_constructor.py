"""Optimizer wrapper constructor with layer-wise learning-rate decay for a ViT trunk.

Trunk parameters get ``lr * decay ** (L + 1 - layer_id)`` with ``L`` trunk blocks and
``layer_id`` 0 for the stem (patch embedding, position embedding, ``ln_pre``), ``i + 1`` for
block ``i`` and ``L + 1`` for anything after the blocks; every parameter outside the trunk
(adapter, pyramid, neck, head) gets the base ``lr``. So the earliest, most general layers move
least (BEiT / ViTDet practice). Weight decay is off for 1-D parameters (biases, norms, scales)
and for the names in ``no_decay_names`` (position and band embeddings).

Parameters are grouped by (module, layer, decay): one group per trunk layer and per top-level
submodule elsewhere (``backbone.adapter``, ``neck.fpn_convs``, ``bbox_head.retina_cls`` ...), so
that ``ProgressiveUnfreezeHook`` can zero the lr of exactly the frozen modules. Frozen parameters
are included (a later stage may train them); with no gradient they are skipped by the optimizer.

    optim_wrapper = dict(
        type='AmpOptimWrapper', dtype='bfloat16',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.9, trunk_prefix='backbone.trunk.'))
"""

from __future__ import annotations

import copy
import re
from typing import Any

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

__all__ = ["LayerDecayOptimWrapperConstructor", "trunk_layer_id"]

_STEM_NAMES = ("patch_embed", "pos_embed", "ln_pre", "cls_token", "class_embedding")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.")


def trunk_layer_id(name: str, num_layers: int) -> int:
    """Layer id of a trunk parameter named ``name`` (relative to the trunk)."""
    if name.startswith(_STEM_NAMES):
        return 0
    match = _BLOCK_RE.match(name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor:
    """Build an optim wrapper whose trunk param groups decay in lr layer by layer.

    Args:
        optim_wrapper_cfg: The config's ``optim_wrapper`` (with ``optimizer``).
        paramwise_cfg: ``layer_decay_rate`` (default 0.9), ``trunk_prefix`` (default
            ``'backbone.trunk.'``), ``num_layers`` (default: counted from the trunk's blocks),
            ``no_decay_names`` (substrings; default position / band embeddings) and
            ``custom_keys`` (``{substring: dict(lr_mult=..., decay_mult=...)}``, first match).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        if "optimizer" not in cfg:
            raise ValueError("optim_wrapper config needs an 'optimizer'")
        self.optimizer_cfg = cfg.pop("optimizer")
        self.optim_wrapper_cfg = cfg
        pw = dict(paramwise_cfg or {})
        self.layer_decay_rate = float(pw.pop("layer_decay_rate", 0.9))
        self.trunk_prefix = pw.pop("trunk_prefix", "backbone.trunk.")
        self.num_layers = pw.pop("num_layers", None)
        self.no_decay_names = tuple(pw.pop("no_decay_names", ("pos_embed", "band_embed")))
        self.custom_keys = dict(pw.pop("custom_keys", {}))
        if pw:
            raise ValueError(
                f"LayerDecayOptimWrapperConstructor: unknown paramwise_cfg keys {sorted(pw)}"
            )
        if not 0 < self.layer_decay_rate <= 1:
            raise ValueError(f"layer_decay_rate must be in (0, 1], got {self.layer_decay_rate}")

    def _num_layers(self, model: nn.Module) -> int:
        if self.num_layers is not None:
            return int(self.num_layers)
        ids = {
            int(m.group(1))
            for name, _ in model.named_parameters()
            if name.startswith(self.trunk_prefix)
            and (m := _BLOCK_RE.match(name[len(self.trunk_prefix) :]))
        }
        return max(ids) + 1 if ids else 0

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """The optimizer's param groups for ``model`` (unwrapped)."""
        base_lr = self.optimizer_cfg["lr"]
        base_wd = self.optimizer_cfg.get("weight_decay", 0.0)
        num_layers = self._num_layers(model)
        groups: dict[tuple, dict[str, Any]] = {}
        for name, param in model.named_parameters():
            if name.startswith(self.trunk_prefix):
                layer = trunk_layer_id(name[len(self.trunk_prefix) :], num_layers)
                scale = self.layer_decay_rate ** (num_layers + 1 - layer)
                module = f"{self.trunk_prefix}layer_{layer}"
            else:
                scale = 1.0
                module = ".".join(name.split(".")[:2])
            decay = param.ndim > 1 and not any(k in name for k in self.no_decay_names)
            lr_mult, decay_mult = 1.0, 1.0
            for key, mults in self.custom_keys.items():
                if key in name:
                    lr_mult = mults.get("lr_mult", 1.0)
                    decay_mult = mults.get("decay_mult", 1.0)
                    break
            key = (module, decay, lr_mult, decay_mult)
            if key not in groups:
                groups[key] = dict(
                    params=[],
                    lr=base_lr * scale * lr_mult,
                    weight_decay=base_wd * decay_mult if decay else 0.0,
                    group_name=f"{module}{'' if decay else '.no_decay'}",
                    lr_scale=scale * lr_mult,
                )
            groups[key]["params"].append(param)
        return list(groups.values())

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer over ``model``'s param groups and wrap it."""
        if is_model_wrapper(model):
            model = model.module
        groups = self.param_groups(model)
        optimizer_cfg = copy.deepcopy(self.optimizer_cfg)
        optimizer_cfg["params"] = groups
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        scales = [g["lr_scale"] for g in groups]
        print_log(
            f"LayerDecayOptimWrapperConstructor: {len(groups)} param groups, layer decay "
            f"{self.layer_decay_rate} over {self._num_layers(model)} trunk blocks, lr scales "
            f"{min(scales):.3g} ... {max(scales):.3g}",
            "current",
        )
        return OPTIM_WRAPPERS.build(self.optim_wrapper_cfg, default_args=dict(optimizer=optimizer))
