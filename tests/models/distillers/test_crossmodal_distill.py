"""Cross-modal distillation (an extension): an RGB teacher and an infrared student on paired
scenes written by the test, loaded through the real pipeline (DroneVehicleDataset +
LoadPairedImages + Resize + RandomFlip + PackDetInputs), normalised per modality; the teacher
receives exactly the RGB channels and the student the infrared one (tiny RetinaNets, CPU)."""

from __future__ import annotations

import pytest
import torch
from crossmodal_testlib import (
    IR_MEAN,
    IR_STD,
    RGB_MEAN,
    RGB_STD,
    cross_modal_cfg,
    ir_detector,
    paired_dataset,
    write_paired,
)
from ds2d2_testlib import build, distiller_cfg

from ds2d2_mm.utils.errors import ConfigError


def collate(dataset, indices=(0, 1)) -> dict:
    from mmengine.dataset import pseudo_collate

    return pseudo_collate([dataset[i] for i in indices])


def record_inputs(module: torch.nn.Module, store: list) -> torch.utils.hooks.RemovableHandle:
    """Record the input tensor of ``module``'s forward."""
    return module.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach()))


def test_teacher_reads_rgb_student_reads_ir_and_the_student_learns(tmp_path):
    write_paired(tmp_path)
    torch.manual_seed(0)
    model = build(cross_modal_cfg())
    model.train()
    packed = collate(paired_dataset(tmp_path))
    raw = [x.float() for x in packed["inputs"]]  # (4, H, W): B, G, R, IR as loaded
    data = model.data_preprocessor(packed, True)
    inputs, samples = data["inputs"], data["data_samples"]
    assert inputs.shape[1] == 4
    assert all(s.metainfo["modality_channels"] == {"rgb": (0, 3), "ir": (3, 4)} for s in samples)

    seen_t, seen_s = [], []
    hooks = [record_inputs(model.teacher.backbone, seen_t),
             record_inputs(model.student.backbone, seen_s)]
    try:
        losses = model.loss(inputs, samples)
    finally:
        for h in hooks:
            h.remove()
    # what each model saw, recomputed from the loaded pixels: the teacher RGB (BGR swapped)
    # with ImageNet statistics, the student the infrared band with its own
    h, w = raw[0].shape[-2:]
    rgb = raw[0][[2, 1, 0]]
    expect_t = (rgb - torch.tensor(RGB_MEAN).view(3, 1, 1)) / torch.tensor(RGB_STD).view(3, 1, 1)
    expect_s = (raw[0][3:] - IR_MEAN[0]) / IR_STD[0]
    assert seen_t[0].shape[1] == 3 and seen_s[0].shape[1] == 1
    torch.testing.assert_close(seen_t[0][0, :, :h, :w], expect_t)
    torch.testing.assert_close(seen_s[0][0, :, :h, :w], expect_s)

    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                "loss_imp_high_cls", "loss_imp_high_reg"):
        assert torch.isfinite(losses[key]).all(), key
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total) and total > 0
    before = {n: p.detach().clone() for n, p in model.student.named_parameters()}
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    optim.zero_grad()
    total.backward()
    assert model.student.backbone.conv1.weight.shape[1] == 1
    assert model.teacher.backbone.conv1.weight.grad is None
    optim.step()
    changed = [n for n, p in model.student.named_parameters() if not torch.equal(p, before[n])]
    assert "backbone.conv1.weight" in changed and len(changed) > len(before) // 2


def test_predict_feeds_the_student_its_modality_only(tmp_path):
    write_paired(tmp_path, split="val")
    model = build(cross_modal_cfg())
    model.eval()
    seen = []
    hook = record_inputs(model.student.backbone, seen)
    data = model.data_preprocessor(collate(paired_dataset(tmp_path, "val")), False)
    with torch.no_grad():
        results = model.predict(data["inputs"], data["data_samples"])
    hook.remove()
    assert seen and seen[0].shape[1] == 1
    torch.testing.assert_close(seen[0], data["inputs"][:, 3:4])
    assert len(results) == 2 and "pred_instances" in results[0]


def test_single_modality_distiller_is_not_sliced():
    from ds2d2_testlib import make_batch, tiny_retinanet

    model = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16)))
    assert not model.router.cross_modal and model.router.renorm is None
    inputs, _ = make_batch(model)
    assert model.router.student_inputs(inputs) is inputs
    assert model.router.teacher_inputs(inputs) is inputs


@pytest.mark.parametrize("overrides,message", [
    (dict(teacher_input="nir"),
     r"distill_cfg\.teacher_input='nir' is not a modality of the data_preprocessor's "
     r"modalities: known \['rgb', 'ir'\]"),
    (dict(student_input="thermal"), r"distill_cfg\.student_input='thermal' is not a modality"),
    (dict(student_input=None), r"needs both teacher_input and student_input; student_input"),
    (dict(teacher_input=3), r"distill_cfg\.teacher_input must be a modality name"),
])
def test_bad_modality_keys_name_the_key_and_the_modalities(overrides, message):
    cfg = cross_modal_cfg()
    cfg["distill_cfg"].update(overrides)
    with pytest.raises(ConfigError, match=message):
        build(cfg)


def test_wrong_pairings_are_config_errors():
    # no paired preprocessor: the student's own 1-band one
    cfg = cross_modal_cfg()
    cfg.pop("data_preprocessor")
    with pytest.raises(ConfigError, match="need paired inputs"):
        build(cfg)
    # teacher and student swapped: the RGB teacher's backbone cannot read 1 channel
    with pytest.raises(ConfigError, match="modality 'ir' has 1 channels but the teacher's "
                                          "backbone reads 3"):
        build(cross_modal_cfg(teacher_input="ir", student_input="rgb"))
    # the student's own preprocessor normalises its modality otherwise: export would break
    cfg = cross_modal_cfg()
    cfg["student"]["data_preprocessor"]["mean"] = [100.0]
    with pytest.raises(ConfigError, match=r"student's own data_preprocessor normalises modality "
                                          r"'ir' with \(mean, std\) = \(\[100\.0\]"):
        build(cfg)
    # channel order: the teacher was trained with BGR -> RGB, the paired RGB is not swapped
    cfg = cross_modal_cfg()
    cfg["data_preprocessor"]["modalities"]["rgb"]["bgr_to_rgb"] = False
    with pytest.raises(ConfigError, match="set modalities.rgb.bgr_to_rgb=True"):
        build(cfg)


def test_teacher_with_other_statistics_gets_mapped_inputs():
    cfg = cross_modal_cfg()
    cfg["teacher_config"]["model"]["data_preprocessor"].update(mean=[0.0] * 3, std=[255.0] * 3)
    model = build(cfg)
    x = torch.randn(1, 4, 32, 32)
    raw_rgb = x[:, :3] * torch.tensor(RGB_STD).view(1, 3, 1, 1) + torch.tensor(
        RGB_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(model.router.teacher_inputs(x), raw_rgb / 255.0)
    torch.testing.assert_close(model.router.student_inputs(x), x[:, 3:])


def test_student_config_alone_is_a_stock_one_band_detector():
    from mmdet.models.detectors import RetinaNet

    model = build(ir_detector())
    assert type(model) is RetinaNet and model.backbone.conv1.in_channels == 1
