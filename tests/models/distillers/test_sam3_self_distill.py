"""TrunkSelfDistiller: the frozen original SAM3 trunk teaches the fine-tuned one (tiny trunk)."""

from __future__ import annotations

import copy

import pytest
import torch
from mmengine.config import Config
from sam3_testlib import REPO, load_tool, requires_sam3

pytestmark = requires_sam3

DIOR = REPO / "configs" / "sam3" / "retina_sam3_dior.py"
TINY = REPO / "configs" / "sam3" / "retina_sam3_tiny.py"
SD_TERMS = {"loss_sd_low", "loss_sd_high"}
NUM_CLASSES = 20
#: Below this the self-distillation terms count as zero (the same trunk, run twice).
ZERO = 1e-12


def tiny_cfg(**trunk_cfg) -> dict:
    """The tiny config's model (flat TrunkSelfDistiller form), trunk settings overridden."""
    cfg = Config.fromfile(str(TINY)).model.to_dict()
    cfg["backbone"]["trunk_cfg"].update(trunk_cfg)
    return cfg


def build(cfg: dict):
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    model.init_weights()
    return model


def batch(model, size: int = 112, seed: int = 0):
    """A preprocessed training batch with boxes (images of ``size`` px)."""
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(seed)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, size, size)] * 2, num_items=[3, 2],
                            num_classes=NUM_CLASSES)
    data = model.data_preprocessor(packed, True)
    return data["inputs"], data["data_samples"]


def total(losses: dict) -> torch.Tensor:
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)


@pytest.fixture
def model():
    """Tiny SAM3 RetinaNet with self-distillation, drop path off (deterministic trunk)."""
    return build(tiny_cfg(drop_path_rate=0.0)).train()


def test_terms_are_zero_at_init_and_grow_with_a_changed_trainable_block(model):
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    assert SD_TERMS <= set(losses) and {"loss_cls", "loss_bbox"} <= set(losses)
    for key in SD_TERMS:
        assert losses[key].dtype == torch.float32 and losses[key].requires_grad
        assert losses[key].item() < ZERO, key

    # the spectral adapter sits after the trunk: changing it leaves the terms at zero
    with torch.no_grad():
        model.backbone.adapter.gamma.fill_(1.0)
        for p in model.backbone.adapter.parameters():
            p.add_(0.1 * torch.randn_like(p))
    losses = model.loss(inputs, samples)
    assert all(losses[k].item() < ZERO for k in SD_TERMS)

    with torch.no_grad():
        fc1 = model.backbone.trunk.blocks[-1].mlp.fc1.weight
        fc1.add_(0.05 * torch.randn_like(fc1))
    losses = model.loss(inputs, samples)
    assert all(losses[k].item() > 1e-6 for k in SD_TERMS), {k: losses[k] for k in SD_TERMS}


def test_terms_follow_weights_and_normalisation():
    cfg = tiny_cfg(drop_path_rate=0.0)
    terms = {}
    for name, extra in [("unit", {}), ("scaled", dict(weight_low=3.0, weight_high=0.5)),
                        ("raw", dict(normalize=False))]:
        model = build({**cfg, **extra}).train()
        with torch.no_grad():
            fc2 = model.backbone.trunk.blocks[-1].mlp.fc2.weight
            fc2.add_(0.05 * torch.randn(fc2.shape, generator=torch.Generator().manual_seed(3)))
        inputs, samples = batch(model)
        terms[name] = {k: v.item() for k, v in model.loss(inputs, samples).items() if k in SD_TERMS}
        if name == "raw":
            energy = model.original_map(inputs).pow(2).mean().item()
    assert terms["scaled"]["loss_sd_low"] == pytest.approx(3.0 * terms["unit"]["loss_sd_low"])
    assert terms["scaled"]["loss_sd_high"] == pytest.approx(0.5 * terms["unit"]["loss_sd_high"])
    assert terms["raw"]["loss_sd_low"] == pytest.approx(terms["unit"]["loss_sd_low"] * energy)


def test_gradients_reach_trainable_parts_only_never_the_original(model):
    inputs, samples = batch(model)
    with torch.no_grad():  # make the terms non-zero so that their gradient is informative
        fc1 = model.backbone.trunk.blocks[-1].mlp.fc1.weight
        fc1.add_(0.05 * torch.randn_like(fc1))
    losses = model.loss(inputs, samples)
    trainable_blocks = ("backbone.trunk.blocks.2.", "backbone.trunk.blocks.3.")

    (losses["loss_sd_low"] + losses["loss_sd_high"]).backward(retain_graph=True)
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad and all(n.startswith(trainable_blocks) for n in with_grad), with_grad
    model.zero_grad(set_to_none=True)

    total(losses).backward()
    with_grad = {n for n, p in model.named_parameters()
                 if p.grad is not None and p.grad.abs().sum() > 0}
    for prefix in (*trainable_blocks, "backbone.adapter.", "backbone.pyramid.", "neck.",
                   "bbox_head."):
        assert any(n.startswith(prefix) for n in with_grad), prefix
    frozen = ("backbone.trunk.blocks.0.", "backbone.trunk.blocks.1.", "backbone.trunk.patch_embed",
              "backbone.trunk.pos_embed", "backbone.trunk.ln_pre")
    assert not any(n.startswith(frozen) for n in with_grad)
    original = model.original_trunk()
    assert all(p.grad is None and not p.requires_grad for p in original.parameters())


def test_original_trunk_is_hidden_frozen_and_moves_with_the_model(model):
    from mmdet.registry import MODELS

    from ds2d2_mm.models.distillers.self_distiller import detector_config_of

    original = model.original_trunk()
    own = {id(p) for p in model.parameters()}
    assert not own & {id(p) for p in original.parameters()}
    assert {id(p) for p in model.backbone.trunk.parameters()} <= own  # the live trunk is
    # the checkpoint holds exactly the plain detector's keys: no prefix, no original trunk
    plain = MODELS.build(detector_config_of(tiny_cfg(drop_path_rate=0.0)))
    assert list(model.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(model.state_dict(), strict=True)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())

    model.train()
    assert model.backbone.adapter.training and model.bbox_head.training
    assert not original.training and not any(m.training for m in original.modules())
    assert model.detector.training
    model.eval()
    assert not model.detector.training and not original.training

    model.to("meta")
    assert {p.device.type for p in original.parameters()} == {"meta"}
    assert {b.device.type for b in original.buffers()} == {"meta"}


def test_original_from_checkpoint_is_built_on_first_loss_only(tmp_path):
    """With backbone.checkpoint set, the original trunk is read from the file when first needed."""
    from ds2d2_mm.models.backbones import SAM3_TRUNK_PREFIX, build_sam3_trunk

    torch.manual_seed(7)
    source = build_sam3_trunk("tiny", drop_path_rate=0.0)
    torch.save({"model": {SAM3_TRUNK_PREFIX + k: v for k, v in source.state_dict().items()}},
               tmp_path / "sam3.pt")
    cfg = tiny_cfg(drop_path_rate=0.0)
    cfg["backbone"]["checkpoint"] = str(tmp_path / "sam3.pt")
    model = build(cfg).train()
    assert model._original is None  # nothing held while only predicting / as a teacher
    inputs, samples = batch(model)
    with torch.no_grad():
        model.eval()
        model.predict(inputs, copy.deepcopy(samples))
    assert model._original is None
    model.train()
    with torch.no_grad():  # fine-tuning moved the trunk; the original still comes from the file
        fc1 = model.backbone.trunk.blocks[-1].mlp.fc1.weight
        fc1.add_(0.05 * torch.randn_like(fc1))
    losses = model.loss(inputs, samples)
    assert model._original is not None
    for key, value in source.state_dict().items():
        assert torch.equal(model._original.state_dict()[key], value), key
    assert all(losses[k].item() > 1e-6 for k in SD_TERMS)
    assert not any(k.startswith("_original") for k in model.state_dict())


def test_terms_are_skipped_when_the_trunk_does_not_train(model):
    """A head-only stage (ProgressiveUnfreezeHook): no gradient to follow, no original forward."""
    model.backbone.set_num_trainable_blocks(0)
    model.train()
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    assert not SD_TERMS & set(losses) and "loss_cls" in losses


def test_any_decomposer_keeps_the_plain_detector_keys(model):
    cfg = dict(tiny_cfg(drop_path_rate=0.0), decomposer="db2")
    other = build(cfg).train()
    assert list(other.state_dict()) == list(model.state_dict())
    inputs, samples = batch(other)
    losses = other.loss(inputs, samples)
    assert all(losses[k].item() < 1e-10 for k in SD_TERMS)


def test_predict_tensor_and_features_are_the_wrapped_detectors(model):
    model.eval()
    inputs, samples = batch(model)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        ref = model.detector.predict(inputs, copy.deepcopy(samples))
        raw, raw_ref = model._forward(inputs), model.detector._forward(inputs)
        feats, feats_ref = model.extract_feat(inputs), model.detector.extract_feat(inputs)
    assert torch.equal(ours[0].pred_instances.bboxes, ref[0].pred_instances.bboxes)
    assert all(torch.equal(a, b) for a, b in zip(raw[0], raw_ref[0], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(feats, feats_ref, strict=True))
    assert model.data_preprocessor is model.detector.data_preprocessor
    assert model.bbox_head is model.detector.bbox_head and model.with_neck


def test_nested_and_flat_config_forms_build_the_same_model():
    from ds2d2_mm.models.distillers.self_distiller import detector_config_of

    flat = tiny_cfg()
    inner = detector_config_of(flat)
    assert inner["type"] == "RetinaNet" and inner["backbone"]["type"] == "SAM3ViTBackbone"
    assert "weight_low" not in inner and "detector_type" not in inner
    nested = dict(type="TrunkSelfDistiller", detector=inner.to_dict(), weight_low=2.0)
    a, b = build(flat), build(nested)
    assert list(a.state_dict()) == list(b.state_dict())
    assert b.weight_low == 2.0 and b.sd_loss.lambda_low == 2.0
    assert detector_config_of(inner) == inner  # any other detector config passes through
    with pytest.raises(ValueError, match="either"):
        build(dict(nested, detector_type="RetinaNet"))
    with pytest.raises(ValueError, match="detector_type"):
        build(dict(type="TrunkSelfDistiller", backbone=inner["backbone"]))
    plain_backbone = dict(inner, backbone=dict(type="ResNet", depth=18, init_cfg=None),
                          neck=dict(inner["neck"], in_channels=[64, 128, 256, 512]))
    with pytest.raises(TypeError, match="forward_trunk"):
        build(dict(type="TrunkSelfDistiller", detector=plain_backbone))


def test_tiny_config_one_training_iteration():
    from mmdet.registry import HOOKS
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(TINY))
    assert cfg.model.type == "TrunkSelfDistiller" and cfg.model.weight_low > 0
    model = build(cfg.model.to_dict()).train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    HOOKS.build(cfg.custom_hooks[0])
    original = {k: v.clone() for k, v in model.original_trunk().state_dict().items()}
    inputs, samples = batch(model)

    model.eval()  # no drop path: the terms measure drift only
    before = model.loss(inputs, samples)
    assert all(before[k].item() < ZERO for k in SD_TERMS)

    model.train()
    frozen = model.backbone.trunk.blocks[0].attn.qkv.weight.detach().clone()
    tail = model.backbone.trunk.blocks[-1].attn.qkv.weight.detach().clone()
    losses = model.loss(inputs, samples)
    assert SD_TERMS <= set(losses)
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss) and SD_TERMS <= set(log_vars)
    wrapper.update_params(loss)
    assert torch.equal(model.backbone.trunk.blocks[0].attn.qkv.weight, frozen)
    assert not torch.equal(model.backbone.trunk.blocks[-1].attn.qkv.weight, tail)
    for key, value in model.original_trunk().state_dict().items():
        assert torch.equal(value, original[key]), key

    model.eval()
    after = model.loss(inputs, samples)
    assert all(after[k].item() > 0 for k in SD_TERMS)


def test_dior_config_uses_self_distillation_with_plain_detector_keys():
    from mmdet.registry import HOOKS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    from mmengine.utils import import_modules_from_strings

    from ds2d2_mm.models.distillers.self_distiller import TrunkSelfDistiller, detector_config_of

    cfg = Config.fromfile(str(DIOR))
    assert cfg.model.type == "TrunkSelfDistiller" and cfg.model.detector_type == "RetinaNet"
    assert cfg.model.weight_low > 0 and cfg.model.weight_high > 0 and cfg.model.normalize
    # what the config imports registers the wrapper, its backbone, hook and optimizer constructor
    assert cfg.custom_imports.imports == ["ds2d2_mm"]
    import_modules_from_strings(cfg.custom_imports.imports)
    assert MODELS.get("TrunkSelfDistiller") is TrunkSelfDistiller
    assert MODELS.get(cfg.model.backbone.type) and HOOKS.get(cfg.custom_hooks[0].type)
    assert OPTIM_WRAPPER_CONSTRUCTORS.get(cfg.optim_wrapper.constructor)
    inner = detector_config_of(cfg.model)
    assert inner.backbone.type == "SAM3ViTBackbone" and inner.bbox_head.num_classes == 20
    # the hook, the optimizer and the tools name parameters without a wrapper prefix
    assert cfg.optim_wrapper.paramwise_cfg.trunk_prefix == "backbone.trunk."
    assert cfg.custom_hooks[0].stages[1].trainable == ["bbox_head"]


def test_checkpoint_tools_find_the_trunk(tmp_path, model):
    """The export tool finds ``backbone.trunk.`` in a self-distillation checkpoint; the retention
    tool reads the self-distillation config and passes the unchanged trunk."""
    import cv2
    import numpy as np

    from ds2d2_mm.models.backbones import SAM3_TRUNK_PREFIX, trunk_to_sam3_state
    from ds2d2_mm.models.backbones.sam3_trunk import trunk_state_from_training_checkpoint

    ckpt = tmp_path / "epoch_1.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, ckpt)
    trunk, prefix = trunk_state_from_training_checkpoint(str(ckpt))
    assert prefix == "backbone.trunk."
    export = load_tool("export_sam3_trunk")
    out = tmp_path / "sam3_finetuned.pt"
    assert export.export_trunk(str(ckpt), str(out)) == len(trunk_to_sam3_state(trunk))
    exported = torch.load(out, weights_only=True)
    assert all(k.startswith(SAM3_TRUNK_PREFIX) for k in exported)

    original = model.original_trunk()
    torch.save({"model": trunk_to_sam3_state(original.state_dict())}, tmp_path / "sam3.pt")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(images / f"img{i}.png"), rng.integers(0, 255, (90, 100, 3), dtype=np.uint8))
    retention = load_tool("sam3_retention")
    argv = [str(TINY), str(ckpt), "--images", str(images), "--original",
            str(tmp_path / "sam3.pt"), "--device", "cpu"]
    assert retention.main(argv) == 0
