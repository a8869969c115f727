"""MMRotate students: a rotated RetinaNet from mmrotate's own config trains on CPU, and the same
SpectralDistiller distils it (oriented DISW, oriented-box regression KD)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import without_pretrained

mmrotate = pytest.importorskip("mmrotate")
from rotated_testlib import build_rot, rotated_batch, tiny_rotated_retinanet, total  # noqa: E402


def test_rotated_retinanet_from_mmrotate_config_trains_one_step(rotate_scope):
    model = build_rot(tiny_rotated_retinanet())
    inputs, samples = rotated_batch(model)
    assert samples[0].gt_instances.bboxes.tensor.shape[-1] == 5
    losses = model.loss(inputs, samples)
    loss = total(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None


def test_spectral_distiller_takes_a_rotated_student(rotate_scope):
    teacher = tiny_rotated_retinanet(width=16, fpn=32)
    cfg = dict(type="SpectralDistiller", student=tiny_rotated_retinanet(),
               teacher_config=dict(model=teacher),
               amplifier_config=dict(model=dict(type="HighFrequencyAmplifier",
                                                detector=copy.deepcopy(teacher))),
               allow_random_teacher=True,
               distill_cfg=dict(kd_reg=dict(type="KDRotatedGDLoss", loss_type="kld")))
    model = build_rot(cfg)
    inputs, samples = rotated_batch(model)
    losses = model.loss(inputs, samples)
    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"):
        assert torch.isfinite(losses[key]), key
    assert losses["loss_imp_full_reg"].item() > 0
    total(losses).backward()
    assert model.student.backbone.conv1.weight.grad is not None


def test_giou_kd_on_a_rotated_student_is_refused_at_build_time(rotate_scope):
    teacher = tiny_rotated_retinanet(width=16, fpn=32)
    cfg = dict(type="SpectralDistiller", student=tiny_rotated_retinanet(),
               teacher_config=dict(model=teacher), allow_random_teacher=True,
               distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0),
                                kd_reg=dict(type="mmdet.GIoULoss")))
    with pytest.raises(ValueError, match=r"distill_cfg.kd_reg: GIoULoss.*KDRotatedGDLoss"):
        build_rot(cfg)


def test_rotated_student_defaults_to_the_gaussian_distance_kd(rotate_scope):
    teacher = tiny_rotated_retinanet(width=16, fpn=32)
    cfg = dict(type="SpectralDistiller", student=tiny_rotated_retinanet(),
               teacher_config=dict(model=teacher), allow_random_teacher=True,
               distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0)))
    assert type(build_rot(cfg).kd_reg).__name__ == "KDRotatedGDLoss"


_CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "ds2d2"
ROTATED_CONFIGS = sorted([*_CONFIG_DIR.glob("rotated_*.py"), *_CONFIG_DIR.glob("oriented_*.py")])


@pytest.mark.parametrize("path", ROTATED_CONFIGS, ids=lambda p: p.name)
def test_rotated_recipe_config_trains_one_iteration(path, rotate_scope):
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == "mmrotate"
    model_cfg = without_pretrained(cfg.model.to_dict())
    if model_cfg["type"] == "SpectralDistiller":
        for key in ("teacher_config", "amplifier_config"):
            assert Path(model_cfg[key]).is_file(), key
        model_cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model_cfg["type"] == "HighFrequencyAmplifier":
        model_cfg["teacher_ckpt"] = None
    model = build_rot(model_cfg)
    inputs, samples = rotated_batch(model)
    losses = model.loss(inputs, samples)
    loss = total(losses)
    assert torch.isfinite(loss)
    loss.backward()


def test_horizontal_teacher_for_a_rotated_student_is_refused(rotate_scope):
    from ds2d2_testlib import build, tiny_retinanet
    from mmengine.registry import DefaultScope

    from ds2d2_mm.models.distillers.strategies import SingleStageStrategy
    from ds2d2_mm.utils.errors import ConfigError

    student = build_rot(tiny_rotated_retinanet())
    with DefaultScope.overwrite_default_scope("mmdet"):
        teacher = build(tiny_retinanet(width=16, fpn=16, num_classes=3))
    with pytest.raises(ConfigError, match="student predicts rotated boxes and the teacher "
                                          "horizontal"):
        SingleStageStrategy().check_pair(student, teacher)
    SingleStageStrategy().check_pair(student, build_rot(tiny_rotated_retinanet(width=16)))
