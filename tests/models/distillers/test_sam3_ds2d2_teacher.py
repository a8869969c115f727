"""The fine-tuned SAM3 detector as a DS2D2 teacher of a ResNet-18 RetinaNet (tiny, CPU)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from sam3_testlib import REPO, requires_sam3

pytestmark = requires_sam3

SAM3_DIOR = REPO / "configs" / "sam3" / "retina_sam3_dior.py"
DS2D2_DIOR = REPO / "configs" / "ds2d2" / "retina_sam3_r18_dior.py"
HFAMP_DIOR = REPO / "configs" / "ds2d2" / "retina_sam3_hfamp_dior.py"
TINY_DISTILL = REPO / "configs" / "sam3" / "retina_sam3_tiny_r18_distill.py"
TINY_HFAMP = REPO / "configs" / "sam3" / "retina_sam3_tiny_hfamp.py"
DISTILL_TERMS = {"loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                 "loss_imp_high_cls", "loss_imp_high_reg"}
NUM_CLASSES = 20
#: Test images: at most the tiny trunk's 112 px and a multiple of the student's padding (32).
IMG = 96


def fpn_strides(cfg) -> list[float]:
    return list(cfg.bbox_head.anchor_generator.strides)


@pytest.mark.parametrize(("amp_path", "sam3_path"), [(HFAMP_DIOR, SAM3_DIOR),
                                                     (TINY_HFAMP, SAM3_DIOR.with_name(
                                                         "retina_sam3_tiny.py"))],
                         ids=["dior", "tiny"])
def test_amplifier_stage_wraps_the_plain_sam3_detector(amp_path, sam3_path):
    from ds2d2_mm.models.distillers.self_distiller import detector_config_of

    amp = Config.fromfile(str(amp_path))
    inner = detector_config_of(Config.fromfile(str(sam3_path)).model).to_dict()
    inner.pop("_scope_", None)
    assert amp.model.type == "HighFrequencyAmplifier"
    assert amp.model.detector.to_dict() == inner  # the SAM3 stage's RetinaNet, unwrapped
    assert Path(amp.model.teacher_config).resolve() == sam3_path.resolve()
    assert amp.custom_hooks == []  # no unfreezing stages: backbone and neck stay frozen


def test_dior_config_pairs_the_sam3_teacher_with_the_r18_student():
    from ds2d2_mm.models.distillers.self_distiller import detector_config_of

    cfg = Config.fromfile(str(DS2D2_DIOR))
    model = cfg.model
    assert model.type == "SpectralDistiller" and not model.get("allow_random_teacher", False)
    assert Path(model.teacher_config).resolve() == SAM3_DIOR.resolve()
    assert Path(model.amplifier_config).resolve() == HFAMP_DIOR.resolve()
    assert "retina_sam3_dior" in model.teacher_ckpt
    assert "retina_sam3_hfamp_dior" in model.amplifier_ckpt
    amp = Config.fromfile(str(HFAMP_DIOR))
    assert amp.model.teacher_ckpt == model.teacher_ckpt
    teacher = detector_config_of(Config.fromfile(str(SAM3_DIOR)).model)
    student = model.student
    assert student.backbone.depth == 18
    assert student.neck.num_outs == teacher.neck.num_outs
    assert fpn_strides(student) != fpn_strides(teacher)  # the distiller resizes across strides
    assert student.bbox_head.num_classes == teacher.bbox_head.num_classes


@pytest.fixture(scope="module")
def distiller():
    from mmdet.registry import MODELS

    cfg = Config.fromfile(str(TINY_DISTILL))
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="random"):
        model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def make_batch(model, seed: int = 0):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(seed)
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, IMG, IMG)] * 2, num_items=[3, 2],
                            num_classes=NUM_CLASSES)
    data = model.data_preprocessor(packed, True)
    return data["inputs"], data["data_samples"]


def test_sam3_teacher_is_found_through_the_self_distillation_wrapper(distiller):
    from ds2d2_mm.models.distillers.self_distiller import TrunkSelfDistiller

    teacher = distiller.teacher
    assert isinstance(teacher, TrunkSelfDistiller)
    full = next(a for a in distiller.amplifiers if a.name == "full")
    assert full.head is teacher.bbox_head  # the strategy found the wrapped RetinaNet's head
    high = next(a for a in distiller.amplifiers if a.name == "high")
    assert high.head is not teacher.bbox_head and high.decomposer is not None
    assert distiller.router.renorm is not None  # SAM3 [-1, 1] vs ImageNet normalisation
    keys = [k for k in distiller.state_dict() if k != "provenance_sha256"]
    assert all(k.startswith(("student.", "connector.", "explicit.")) for k in keys)
    assert not any("trunk" in k for k in keys)
    assert distiller.connector.convs[0].weight.shape[:2] == (32, 16)  # student 16 -> 32

    inputs, _ = make_batch(distiller)
    scale, shift = distiller.router.renorm
    pixels = inputs * distiller.data_preprocessor.std + distiller.data_preprocessor.mean
    sam3 = teacher.data_preprocessor
    torch.testing.assert_close(inputs * scale + shift, (pixels - sam3.mean) / sam3.std)


def test_one_training_iteration_across_strides(distiller):
    from mmengine.optim import build_optim_wrapper

    model = distiller
    model.train()
    assert not model.teacher.training and not model.teacher.backbone.trunk.training
    inputs, samples = make_batch(model)
    student_feats = model.student.extract_feat(inputs)
    teacher_feats = model.teacher_feats(inputs)
    assert [f.shape[-1] for f in student_feats] != [f.shape[-1] for f in teacher_feats]
    assert student_feats[0].shape[1] != teacher_feats[0].shape[1]  # 16 vs 32 channels

    teacher_state = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_w = model.student.backbone.layer4[0].conv1.weight.detach().clone()
    cfg = Config.fromfile(str(TINY_DISTILL))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.loss(inputs, samples)
    assert DISTILL_TERMS <= set(losses) and {"loss_cls", "loss_bbox"} <= set(losses)
    assert not {"loss_sd_low", "loss_sd_high"} & set(losses)  # the teacher's own loss never runs
    for key, value in losses.items():
        for v in value if isinstance(value, list) else [value]:
            assert torch.isfinite(v).all(), key
    loss, _ = model.parse_losses(losses)
    wrapper.update_params(loss)
    assert not torch.equal(model.student.backbone.layer4[0].conv1.weight, student_w)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_state[key]), key
    assert model.teacher._original is not None  # tiny teacher without checkpoint: a copy, unused
    assert all(p.grad is None for p in model.teacher.parameters())


def test_predictions_are_the_students(distiller):
    model = distiller
    model.eval()
    inputs, samples = make_batch(model)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        ref = model.student.predict(inputs, copy.deepcopy(samples))
        raw, raw_ref = model._forward(inputs), model.student._forward(inputs)
    assert torch.equal(ours[0].pred_instances.bboxes, ref[0].pred_instances.bboxes)
    assert torch.equal(ours[0].pred_instances.scores, ref[0].pred_instances.scores)
    # the student's grid (stride 8 on 96 px: 12 x 12), not the teacher's (stride 7: 14 x 14)
    assert raw[0][0].shape[-2:] == (IMG // 8, IMG // 8)
    assert all(torch.equal(a, b) for a, b in zip(raw[0], raw_ref[0], strict=True))
