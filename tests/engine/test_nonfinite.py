"""Non-finite values: every term is named with the iteration; 'raise' stops, 'skip' skips the
whole optimizer step (guarded wrappers), too many skips in a row stop the run."""

from __future__ import annotations

import copy

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch, tiny_retinanet
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper


def distiller(**distill):
    model = build(distiller_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=16),
                                **distill))
    return model.train()


def nan_features(model):
    """Fault injection: the student's FPN output holds a NaN (every term sees it)."""
    def hook(module, args, out):
        out = list(out)
        out[0] = out[0].clone()
        out[0][0, 0, 0, 0] = float("nan")
        return tuple(out)

    return model.student.neck.register_forward_hook(hook)


def data(model):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=2, image_shapes=[(3, 64, 64)] * 2, num_items=[3, 2],
                          num_classes=3)


def test_raise_names_task_and_distillation_terms_and_the_iteration():
    model = distiller()
    MessageHub.get_current_instance().update_info("iter", 41)
    inputs, samples = make_batch(model)
    handle = nan_features(model)
    with pytest.raises(FloatingPointError) as err:
        model.loss(inputs, samples)
    handle.remove()
    message = str(err.value)
    for term in ("loss_cls", "loss_exp_low", "loss_imp_full_cls"):
        assert term in message, term
    assert "iteration 41" in message


@pytest.mark.parametrize("amp", [False, pytest.param(True, marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="mmengine's AMP wrapper needs a GPU"))])
def test_skip_skips_the_whole_step_and_counts_it(amp):
    model = distiller(nonfinite="skip")
    if amp:
        model.cuda()
    wrapper_type = "GuardedAmpOptimWrapper" if amp else "GuardedOptimWrapper"
    extra = dict(dtype="bfloat16") if amp else {}
    wrapper = build_optim_wrapper(model, dict(
        type=wrapper_type, optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
        max_consecutive_skips=3, **extra))
    hub = MessageHub.get_current_instance()
    hub.update_info("iter", 7)
    hub.update_info("last_ckpt", "work_dirs/x/epoch_3.pth")
    model.train_step(data(model), wrapper)  # a good step: the optimizer gets momentum state
    before = copy.deepcopy(model.state_dict())
    momentum = {id(p): s["momentum_buffer"].clone()
                for p, s in wrapper.optimizer.state.items() if "momentum_buffer" in s}
    assert momentum

    handle = nan_features(model)
    model.train_step(data(model), wrapper)
    after = model.state_dict()
    for key, value in before.items():
        if torch.is_tensor(value) and value.is_floating_point() and "running" not in key:
            assert torch.equal(after[key], value), key  # no update, no weight decay
    for p, s in wrapper.optimizer.state.items():
        if id(p) in momentum:
            assert torch.equal(s["momentum_buffer"], momentum[id(p)])
    assert wrapper.skipped_steps == 1 and hub.get_info("skipped_steps") == 1
    model.train_step(data(model), wrapper)
    with pytest.raises(FloatingPointError, match=r"3 optimizer steps in a row.*epoch_3\.pth"):
        model.train_step(data(model), wrapper)
    handle.remove()
    model.train_step(data(model), wrapper)  # finite again: steps resume
    assert wrapper.consecutive_skips == 0


def test_non_finite_gradients_alone_skip_the_step():
    """A finite loss whose backward overflows (a hook makes a gradient NaN)."""
    model = distiller(nonfinite="skip")
    wrapper = build_optim_wrapper(model, dict(type="GuardedOptimWrapper",
                                              optimizer=dict(type="SGD", lr=0.1)))
    weight = model.student.backbone.conv1.weight
    handle = weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    before = weight.detach().clone()
    model.train_step(data(model), wrapper)
    handle.remove()
    assert torch.equal(weight, before) and wrapper.skipped_steps == 1
    assert weight.grad is None or not weight.grad.abs().sum()


def test_losses_compute_in_fp32_under_autocast():
    model = distiller()
    inputs, samples = make_batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"):
        assert losses[key].dtype == torch.float32, key
        assert torch.isfinite(losses[key]), key


def test_bf16_autocast_with_a_sigmoid_focal_loss_is_refused_before_training():
    from mmengine.config import Config

    from ds2d2_mm.apis.runner import check_amp
    from ds2d2_mm.utils.errors import ConfigError

    cfg = Config(dict(model=dict(bbox_head=dict(loss_cls=dict(type="FocalLoss"))),
                      optim_wrapper=dict(type="AmpOptimWrapper", dtype="bfloat16")))
    with pytest.raises(ConfigError, match=r"model\.bbox_head\.loss_cls = FocalLoss.*--amp"):
        check_amp(cfg)
    cfg.optim_wrapper.dtype = "float16"
    check_amp(cfg)  # fp16 is fine
    from ds2d2_testlib import REPO

    for path in (REPO / "configs").rglob("*.py"):  # no shipped config asks for it
        if "_base_" not in path.parts and "AmpOptimWrapper" in path.read_text():
            check_amp(Config.fromfile(str(path)))
