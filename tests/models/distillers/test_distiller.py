"""SpectralDistiller on tiny RetinaNet and Faster R-CNN pairs (CPU, random init)."""

from __future__ import annotations

import copy

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch, tiny_faster_rcnn, tiny_retinanet

RETINA_TERMS = {"loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"}


def retina_pair(**distill) -> dict:
    return distiller_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=32),
                         **distill)


def frcnn_pair(**distill) -> dict:
    distill.setdefault("kd_cls", dict(type="KDKLDivLoss", temperature=3.0, loss_weight=0.5))
    distill.setdefault("kd_reg", dict(type="L1Loss", loss_weight=1.0))
    return distiller_cfg(tiny_faster_rcnn(width=8, fpn=16), tiny_faster_rcnn(width=16, fpn=32),
                         **distill)


def total(losses: dict) -> torch.Tensor:
    out = 0
    for k, v in losses.items():
        if "loss" in k:
            out = out + (sum(v) if isinstance(v, list) else v)
    return out


@pytest.mark.parametrize("pair,terms", [(retina_pair, RETINA_TERMS), (frcnn_pair, RETINA_TERMS)])
def test_loss_terms_named_finite_and_gradients_reach_student_and_adapter_only(pair, terms):
    model = build(pair())
    model.train()
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert terms <= set(losses), set(losses)
    student_terms = {k for k in losses if k not in terms}
    assert any("cls" in k for k in student_terms)  # the student's own task losses are kept
    for k in terms:
        assert torch.isfinite(losses[k]).all(), k
    total(losses).backward()
    names_with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith("student.backbone") for n in names_with_grad)
    assert any(n.startswith("connector") for n in names_with_grad)
    assert all(n.startswith(("student.", "connector.", "explicit."))
               for n, _ in model.named_parameters())
    for module in [model.teacher, *(a.head for a in model.amplifiers)]:
        assert all(p.grad is None and not p.requires_grad for p in module.parameters())


def test_teacher_and_amplifiers_hidden_frozen_and_in_eval():
    model = build(retina_pair())
    model.train()
    assert not model.teacher.training
    assert all(not a.head.training for a in model.amplifiers)
    assert model.student.training
    keys = [k for k in model.state_dict() if k != "provenance_sha256"]  # the files' digests
    assert keys and all(k.startswith(("student.", "connector.", "explicit.")) for k in keys)
    assert not any("teacher" in k for k in keys)
    params = {id(p) for p in model.parameters()}
    assert not params & {id(p) for p in model.teacher.parameters()}


def test_predict_and_tensor_modes_are_the_students():
    model = build(retina_pair())
    model.eval()
    inputs, samples = make_batch(model, training=False)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        ref = model.student.predict(inputs, copy.deepcopy(samples))
        raw = model._forward(inputs)
        raw_ref = model.student._forward(inputs)
    assert torch.equal(ours[0].pred_instances.bboxes, ref[0].pred_instances.bboxes)
    assert torch.equal(raw[0][0], raw_ref[0][0])


def test_explicit_loss_is_zero_when_adapted_student_equals_teacher():
    from ds2d2_mm.models.losses import DISWLoss

    loss = DISWLoss(student_channels=8, teacher_channels=8, num_levels=2)
    feats_t = [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]
    boxes = [torch.tensor([[2.0, 2.0, 30.0, 30.0]]), torch.zeros(0, 4)]
    out = loss([f.clone() for f in feats_t], feats_t, boxes, (64, 64))
    assert out["loss_exp_low"].item() == 0 and out["loss_exp_high"].item() == 0
    moved = [f + 0.1 for f in feats_t]
    out = loss(moved, feats_t, boxes, (64, 64))
    assert out["loss_exp_low"].item() > 0


def test_images_without_boxes_give_finite_losses():
    model = build(retina_pair())
    model.train()
    inputs, samples = make_batch(model, num_boxes=[0, 0])
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if k in RETINA_TERMS)


def test_fpn_level_mismatch_is_a_clear_error():
    cfg = distiller_cfg(tiny_retinanet(num_outs=4), tiny_retinanet(width=16, fpn=32))
    with pytest.raises(ValueError, match="4 FPN levels.*teacher 5"):
        build(cfg)


def test_disabled_streams_are_not_built_or_logged():
    model = build(retina_pair(amplifiers=dict(full=1.0, high=0.0)))
    assert [a.name for a in model.amplifiers] == ["full"]
    model.train()
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert "loss_imp_high_cls" not in losses and "loss_imp_full_cls" in losses


def test_full_amplifier_kd_is_zero_when_student_equals_teacher():
    """With identical features, KD on the amplified predictions vanishes (it is a real gap)."""
    from ds2d2_mm.models.distillers.strategies import KDContext, SingleStageStrategy

    model = build(retina_pair())
    model.train()
    inputs, samples = make_batch(model)
    sp = model.strategy.student_pass(model.student, inputs, samples)
    feats_t = model.teacher_feats(inputs)
    head = model.amplifiers[0].head
    assert isinstance(model.strategy, SingleStageStrategy)
    ctx = KDContext(samples=samples, student_pass=sp, kd_cls=model.kd_cls, kd_reg=model.kd_reg,
                    strategy=model.strategy, student=model.student, teacher=model.teacher)
    same = model.strategy.kd_losses(head, feats_t, feats_t, ctx)
    assert same["cls"].item() == pytest.approx(0.0, abs=1e-7)
    assert same["reg"].item() == pytest.approx(0.0, abs=1e-5)
    other = model.strategy.kd_losses(head, [f * 3 for f in feats_t], feats_t, ctx)
    assert other["cls"].item() > 1e-6


def test_model_cfg_set_by_mmdet_apis_does_not_touch_the_distillation_settings():
    """mmdet's init_detector sets ``model.cfg`` to the whole config after building."""
    model = build(retina_pair())
    model.train()
    model.cfg = {"model": "the whole config"}
    inputs, samples = make_batch(model)
    assert "loss_imp_full_cls" in model.loss(inputs, samples)
