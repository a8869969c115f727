"""LayerDecayOptimWrapperConstructor: lr decays layer by layer over the trunk only."""

from __future__ import annotations

import pytest
import torch
from sam3_testlib import make_backbone, requires_sam3
from torch import nn

from ds2d2_mm.engine.optimizers.layer_decay_constructor import (
    LayerDecayOptimWrapperConstructor,
    trunk_layer_id,
)

pytestmark = requires_sam3
LR, WD, DECAY = 1.0, 0.05, 0.5


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = make_backbone(num_trainable_blocks=2)
        self.bbox_head = nn.Conv2d(4, 4, 1)


def build(model: nn.Module):
    cfg = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=LR, weight_decay=WD))
    return LayerDecayOptimWrapperConstructor(cfg, dict(layer_decay_rate=DECAY))(model)


def lr_of(optim_wrapper, param) -> tuple[float, float]:
    for group in optim_wrapper.optimizer.param_groups:
        if any(p is param for p in group["params"]):
            return group["lr"], group["weight_decay"]
    raise AssertionError("parameter not in the optimizer")


def test_layer_ids():
    assert trunk_layer_id("patch_embed.proj.weight", 32) == 0
    assert trunk_layer_id("pos_embed", 32) == 0
    assert trunk_layer_id("blocks.0.attn.qkv.weight", 32) == 1
    assert trunk_layer_id("blocks.31.mlp.fc2.bias", 32) == 32
    assert trunk_layer_id("ln_post.weight", 32) == 33


def test_lrs_and_weight_decay():
    model = Detector()
    wrapper = build(model)
    trunk = model.backbone.trunk
    depth = len(trunk.blocks)
    assert lr_of(wrapper, trunk.patch_embed.proj.weight) == (
        pytest.approx(DECAY ** (depth + 1)),
        WD,
    )
    assert lr_of(wrapper, trunk.pos_embed)[1] == 0.0
    for i, block in enumerate(trunk.blocks):
        assert lr_of(wrapper, block.attn.qkv.weight) == (pytest.approx(DECAY ** (depth - i)), WD)
        assert lr_of(wrapper, block.attn.qkv.bias) == (pytest.approx(DECAY ** (depth - i)), 0.0)
        assert lr_of(wrapper, block.norm1.weight)[1] == 0.0
    assert lr_of(wrapper, model.backbone.adapter.low.reduce.weight) == (LR, WD)
    assert lr_of(wrapper, model.backbone.adapter.band_embed) == (LR, 0.0)
    assert lr_of(wrapper, model.backbone.adapter.gamma) == (LR, 0.0)
    assert lr_of(wrapper, model.bbox_head.weight) == (LR, WD)
    # every parameter once, frozen ones included (a later stage may train them)
    ids = [id(p) for g in wrapper.optimizer.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_groups_never_mix_modules():
    wrapper = build(Detector())
    for group in wrapper.optimizer.param_groups:
        name = group["group_name"]
        assert name.startswith(
            ("backbone.trunk.layer_", "backbone.adapter", "backbone.pyramid", "bbox_head")
        ), name


def test_frozen_parameters_do_not_move():
    model = Detector()
    wrapper = build(model)
    frozen = model.backbone.trunk.blocks[0].mlp.fc1.weight.detach().clone()
    out = model.backbone(torch.randn(1, 3, 112, 112))
    wrapper.update_params(sum(o.mean() for o in out))
    assert torch.equal(model.backbone.trunk.blocks[0].mlp.fc1.weight, frozen)


def test_built_through_the_registry():
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
    from mmengine.optim import build_optim_wrapper

    assert OPTIM_WRAPPER_CONSTRUCTORS.get("LayerDecayOptimWrapperConstructor") is not None
    wrapper = build_optim_wrapper(
        Detector(),
        dict(
            type="OptimWrapper",
            optimizer=dict(type="SGD", lr=0.1),
            constructor="LayerDecayOptimWrapperConstructor",
            paramwise_cfg=dict(layer_decay_rate=0.9),
        ),
    )
    assert len(wrapper.optimizer.param_groups) > 5


def test_unknown_paramwise_key_is_rejected():
    with pytest.raises(ValueError, match="layer_decay"):
        LayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type="SGD", lr=0.1)), dict(layer_decay=0.9)
        )
