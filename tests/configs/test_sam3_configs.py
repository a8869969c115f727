"""The SAM3 configs: consistent strides / channels, and one training iteration (tiny trunk)."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config
from sam3_testlib import REPO, requires_sam3

DIOR = REPO / "configs" / "sam3" / "retina_sam3_dior.py"
TINY = REPO / "configs" / "sam3" / "retina_sam3_tiny.py"
TRUNK_CHANNELS = {DIOR: 1024, TINY: 32}
PATCH = 14


@pytest.mark.parametrize("path", [DIOR, TINY], ids=lambda p: p.name)
def test_strides_and_channels_match_the_pyramid(path):
    cfg = Config.fromfile(str(path))
    backbone, neck, head = cfg.model.backbone, cfg.model.neck, cfg.model.bbox_head
    scales = backbone.scale_factors
    strides = [PATCH / s for s in scales]
    extra = neck.num_outs - len(scales)
    strides += [strides[-1] * 2 ** (i + 1) for i in range(extra)]
    assert head.anchor_generator.strides == strides
    c = TRUNK_CHANNELS[path]
    assert neck.in_channels == [int(c / s) if s > 1 else c for s in scales]
    assert neck.start_level == 0 and neck.add_extra_convs == "on_output"
    assert backbone.type == "SAM3ViTBackbone"
    assert cfg.custom_hooks[0].type == "ProgressiveUnfreezeHook"


def test_dior_config_trains_with_autocast_and_accumulation():
    cfg = Config.fromfile(str(DIOR))
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.accumulative_counts > 1
    assert cfg.optim_wrapper.constructor == "LayerDecayOptimWrapperConstructor"
    assert cfg.model.backbone.checkpoint.endswith("sam3.pt")
    assert cfg.model.bbox_head.num_classes == 20


@requires_sam3
def test_tiny_config_one_training_iteration():
    from mmdet.registry import HOOKS, MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import build_optim_wrapper

    import ds2d2_mm.engine.hooks.progressive_unfreeze_hook  # noqa: F401
    import ds2d2_mm.engine.optimizers.layer_decay_constructor  # noqa: F401
    import ds2d2_mm.models.backbones  # noqa: F401  (registers SAM3ViTBackbone)

    cfg = Config.fromfile(str(TINY))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert torch.equal(model.backbone.adapter.gamma, torch.zeros_like(model.backbone.adapter.gamma))
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    HOOKS.build(cfg.custom_hooks[0])

    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=[(3, 112, 112)] * 2,
        num_items=[3, 2],
        num_classes=cfg.model.bbox_head.num_classes,
    )
    data = model.data_preprocessor(packed, True)
    frozen = model.backbone.trunk.blocks[0].attn.qkv.weight.detach().clone()
    tail = model.backbone.trunk.blocks[-1].attn.qkv.weight.detach().clone()
    losses = model.loss(data["inputs"], data["data_samples"])
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    wrapper.update_params(loss)
    assert torch.equal(model.backbone.trunk.blocks[0].attn.qkv.weight, frozen)
    assert not torch.equal(model.backbone.trunk.blocks[-1].attn.qkv.weight, tail)
    assert model.backbone.adapter.gamma.abs().sum() > 0  # the adapter started learning


def write_tiny_coco(root, num_images: int = 2, size: int = 112) -> None:
    """A COCO-format dataset of random images with DIOR class names, under ``root``."""
    import json

    import cv2
    import numpy as np

    cfg = Config.fromfile(str(TINY))
    (root / "JPEGImages-trainval").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(num_images):
        name = f"JPEGImages-trainval/{i:05d}.jpg"  # as tools/data/dior_to_coco.py writes it
        cv2.imwrite(str(root / name), rng.integers(0, 255, (size, size, 3)))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
        anns.append(
            dict(
                id=i + 1,
                image_id=i + 1,
                category_id=1 + i % 20,
                bbox=[10, 20, 40, 30],
                area=1200,
                iscrowd=0,
            )
        )
    from ds2d2_mm.datasets import DIORDataset

    cats = [dict(id=i + 1, name=n) for i, n in enumerate(DIORDataset.METAINFO["classes"])]
    for ann_file in (cfg.train_dataloader.dataset.ann_file, cfg.val_dataloader.dataset.ann_file):
        (root / ann_file).write_text(
            json.dumps(dict(images=images, annotations=anns, categories=cats))
        )


@requires_sam3
def test_tiny_config_trains_through_the_runner(tmp_path):
    """Two epochs of two iterations with mmengine's Runner: hook, schedulers, layer decay."""
    from mmengine.runner import Runner

    write_tiny_coco(tmp_path / "data")
    cfg = Config.fromfile(str(TINY))
    cfg.work_dir = str(tmp_path / "work")
    cfg.train_dataloader.dataset.data_root = str(tmp_path / "data") + "/"
    cfg.train_dataloader.batch_size = 1
    cfg.train_dataloader.batch_sampler = None
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=2, val_interval=10)
    cfg.param_scheduler[0].end = 2
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.custom_hooks[0].stages = [
        dict(begin=0),
        dict(begin=1, trainable=["bbox_head"], lr_mult=0.1),
    ]
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=10)
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=1)
    cfg.log_level = "WARNING"
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    hook = next(h for h in runner.hooks if type(h).__name__ == "ProgressiveUnfreezeHook")
    assert hook.active == 1 and runner.iter == 4
    assert all(p.requires_grad for p in model.bbox_head.parameters())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(b.training for b in model.backbone.trunk.blocks)
