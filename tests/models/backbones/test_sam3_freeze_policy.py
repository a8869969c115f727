"""The freeze policy trains exactly the last N trunk blocks, the adapter and the pyramid."""

from __future__ import annotations

import pytest
import torch
from sam3_testlib import make_backbone, random_images, requires_sam3

from ds2d2_mm.models.backbones import sam3_trunk

pytestmark = requires_sam3


def trainable_names(module: torch.nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


def test_requires_grad_follows_the_policy():
    backbone = make_backbone(num_trainable_blocks=2)
    names = trainable_names(backbone)
    trunk = {n for n in names if n.startswith("trunk.")}
    expected = {
        f"trunk.{n}"
        for n, _ in backbone.trunk.named_parameters()
        if n.startswith(("blocks.2.", "blocks.3."))
    }
    assert trunk == expected
    assert {n for n, _ in backbone.named_parameters() if not n.startswith("trunk.")} <= names
    total = sum(p.numel() for p in backbone.trunk.parameters())
    share = sum(p.numel() for n, p in backbone.trunk.named_parameters() if f"trunk.{n}" in expected)
    assert backbone.trainable_share == pytest.approx(share / total)


@pytest.mark.parametrize(
    ("num", "blocks"), [(0, set()), (1, {3}), (4, {0, 1, 2, 3}), (9, {0, 1, 2, 3})]
)
def test_policy_extremes(num, blocks):
    backbone = make_backbone(num_trainable_blocks=num)
    for i, block in enumerate(backbone.trunk.blocks):
        assert all(p.requires_grad == (i in blocks) for p in block.parameters())
    stem = [*backbone.trunk.patch_embed.parameters(), backbone.trunk.pos_embed]
    assert all(p.requires_grad == (num >= 4) for p in stem)


def test_negative_block_count_is_rejected():
    with pytest.raises(ValueError, match="num_trainable_blocks"):
        make_backbone(num_trainable_blocks=-1)


def test_frozen_blocks_stay_in_eval_mode():
    backbone = make_backbone(num_trainable_blocks=2).train()
    assert [b.training for b in backbone.trunk.blocks] == [False, False, True, True]
    assert not backbone.trunk.patch_embed.training
    assert backbone.adapter.training and backbone.pyramid.training
    backbone.eval()
    assert not any(b.training for b in backbone.trunk.blocks)


def test_gradients_reach_exactly_the_trainable_parameters():
    images = random_images()
    backbone = make_backbone(num_trainable_blocks=2).train()
    with torch.no_grad():
        backbone.adapter.gamma.fill_(0.5)  # so that the adapter's transforms get gradients too
    sum(o.square().mean() for o in backbone(images)).backward()
    with_grad = {n for n, p in backbone.named_parameters() if p.grad is not None}
    assert with_grad == trainable_names(backbone)


def test_frozen_prefix_runs_without_autograd_and_tail_is_checkpointed(monkeypatch):
    images = random_images()
    backbone = make_backbone(num_trainable_blocks=2).train()
    needs_grad = {}

    def watch(index):
        def hook(module, args, out):
            needs_grad[index] = out.requires_grad

        return hook

    for i, block in enumerate(backbone.trunk.blocks):
        block.register_forward_hook(watch(i))
    calls = []
    original = sam3_trunk.activation_checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(fn)
        return original(fn, *args, **kwargs)

    monkeypatch.setattr(sam3_trunk, "activation_checkpoint", counting)
    backbone(images)
    assert needs_grad == {0: False, 1: False, 2: True, 3: True}
    assert calls == list(backbone.trunk.blocks[2:])


def test_build_logs_the_trainable_share(monkeypatch):
    from ds2d2_mm.models.backbones import sam3_vit as module

    logged = []
    monkeypatch.setattr(module, "print_log", lambda msg, logger=None: logged.append(msg))
    backbone = make_backbone(num_trainable_blocks=2)
    text = "\n".join(logged)
    assert f"{100 * backbone.trainable_share:.2f}%" in text
    assert "last 2 of 4 blocks" in text
