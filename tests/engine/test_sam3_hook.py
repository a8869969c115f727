"""ProgressiveUnfreezeHook switches trainable sets and lr scales at the configured points."""

from __future__ import annotations

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from sam3_testlib import make_backbone, requires_sam3
from torch import nn

from ds2d2_mm.engine.hooks.progressive_unfreeze_hook import ProgressiveUnfreezeHook

BASE_LR = 0.1


class Toy(nn.Module):
    """backbone (first layer frozen by its own policy) + neck + head."""

    def __init__(self, backbone: nn.Module | None = None) -> None:
        super().__init__()
        if backbone is None:
            backbone = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Linear(2, 2))
            backbone[0].requires_grad_(False)
        self.backbone = backbone
        self.neck = nn.Linear(2, 2)
        self.bbox_head = nn.Linear(2, 2)


class FakeRunner:
    """What the hook reads from mmengine's Runner."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        groups = [dict(params=list(m.parameters())) for m in model.children()]
        self.optim_wrapper = OptimWrapper(torch.optim.SGD(groups, lr=BASE_LR))
        self.message_hub = MessageHub.get_instance("test_sam3_hook")
        self.epoch = 0
        self.iter = 0


def trainable(model: nn.Module) -> set[str]:
    return {
        n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("backbone") else "")
        for n, p in model.named_parameters()
        if p.requires_grad
    }


STAGES = [
    dict(begin=0, trainable=["backbone", "neck", "bbox_head"]),
    dict(begin=2, trainable=["bbox_head"], lr_mult=0.1),
    dict(begin=3),
]


def test_stages_by_epoch():
    model = Toy()
    runner = FakeRunner(model)
    hook = ProgressiveUnfreezeHook(STAGES, by_epoch=True)
    hook.before_train(runner)
    seen = []
    for epoch in range(4):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        hook.before_train_iter(runner, 0)
        lrs = [g["lr"] for g in runner.optim_wrapper.param_groups]
        seen.append((trainable(model), lrs))
        hook.after_train_iter(runner, 0)
        assert [g["lr"] for g in runner.optim_wrapper.param_groups] == [BASE_LR] * 4
    stage1 = {"backbone.2", "neck", "bbox_head"}  # backbone.0 stays frozen: never allowed
    # groups: backbone, neck, bbox_head, and mmengine's record of the base lr
    assert seen[0] == (stage1, [BASE_LR] * 4)
    assert seen[1] == seen[0]
    assert seen[2] == (
        {"bbox_head"},
        [0.0, 0.0] + [pytest.approx(BASE_LR * 0.1)] * 2,
    )
    assert seen[3] == (stage1, [BASE_LR] * 4)
    assert model.backbone[2].weight.grad is None


def test_stages_by_iteration_and_resume():
    model = Toy()
    runner = FakeRunner(model)
    hook = ProgressiveUnfreezeHook(
        [dict(begin=5, trainable="bbox_head"), dict(begin=8, trainable=["neck"])], by_epoch=False
    )
    runner.iter = 6  # resumed in the middle of the first stage
    hook.before_train(runner)
    assert hook.active == 0 and trainable(model) == {"bbox_head"}
    for it, expected in [(6, {"bbox_head"}), (7, {"bbox_head"}), (8, {"neck"}), (9, {"neck"})]:
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert trainable(model) == expected, it
        hook.after_train_iter(runner, it)


def test_before_the_first_stage_nothing_changes():
    model = Toy()
    runner = FakeRunner(model)
    hook = ProgressiveUnfreezeHook([dict(begin=3, trainable="neck")], by_epoch=True)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    assert hook.active is None
    assert trainable(model) == {"backbone.2", "neck", "bbox_head"}
    assert [g["lr"] for g in runner.optim_wrapper.param_groups] == [BASE_LR] * 4


@pytest.mark.parametrize(
    "stages", [[], [dict(begin=1), dict(begin=1)], [dict(start=0)], [dict(begin=0, lr_mult=-1)]]
)
def test_bad_stages_are_rejected(stages):
    with pytest.raises(ValueError):
        ProgressiveUnfreezeHook(stages)


def test_registered_in_mmdet_scope():
    from mmdet.registry import HOOKS

    hook = HOOKS.build(dict(type="ProgressiveUnfreezeHook", stages=[dict(begin=0)]))
    assert isinstance(hook, ProgressiveUnfreezeHook)


@requires_sam3
def test_stage_can_unfreeze_more_trunk_blocks():
    model = Toy(make_backbone(num_trainable_blocks=2))
    runner = FakeRunner(model)
    hook = ProgressiveUnfreezeHook(
        [
            dict(begin=0),
            dict(begin=1, num_trainable_blocks=3),
            dict(begin=2, trainable=["backbone"]),
        ]
    )
    hook.before_train(runner)
    model.train()
    blocks = model.backbone.trunk.blocks

    def block_state():
        return [(any(p.requires_grad for p in b.parameters()), b.training) for b in blocks]

    assert block_state() == [(False, False), (False, False), (True, True), (True, True)]
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert block_state() == [(False, False), (True, True), (True, True), (True, True)]
    runner.epoch = 2  # no num_trainable_blocks: back to the build-time policy
    hook.before_train_epoch(runner)
    assert block_state() == [(False, False), (False, False), (True, True), (True, True)]
    assert not any(p.requires_grad for p in model.bbox_head.parameters())
