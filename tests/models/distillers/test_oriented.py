"""Oriented two-stage students (mmrotate's Oriented R-CNN): the distiller's two-stage path on
rotated RoIs against the published formulas, and stock MMRotate checkpoints exported from the
distiller (rotated RetinaNet and Oriented R-CNN)."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("mmrotate")
from ds2d2_testlib import loss_and_sampled_rois  # noqa: E402
from rotated_testlib import (  # noqa: E402
    build_rot,
    rotated_batch,
    tiny_oriented_rcnn,
    tiny_rotated_retinanet,
    total,
)

TEMPERATURE = 3.0


def distiller(student: dict, teacher: dict, **distill) -> dict:
    amp = dict(type="HighFrequencyAmplifier", detector=copy.deepcopy(teacher), decomposer="haar")
    return dict(type="SpectralDistiller", student=student, teacher_config=dict(model=teacher),
                amplifier_config=dict(model=amp), allow_random_teacher=True,
                distill_cfg=dict(distill))


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights (random init gives near-constant scores)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def haar_high_upsampled(x: torch.Tensor) -> torch.Tensor:
    """LH + HL + HH of a one-level Haar transform (2x2 blocks, zero padding to even sizes),
    upsampled bilinearly back to x's size: what the high-frequency amplifier reads."""
    n, c, h, w = x.shape
    x = torch.nn.functional.pad(x, (0, w % 2, 0, h % 2))
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    d, e = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    lh, hl, hh = (a + b - d - e) / 2, (a - b + d - e) / 2, (a - b - d + e) / 2
    return torch.nn.functional.interpolate(lh + hl + hh, size=(h, w), mode="bilinear",
                                           align_corners=False)


def rotated_rcnn_kd(roi_head, feats_s, feats_t, rois):
    """Published two-stage KD on rotated RoIs, by its definition, RoI by RoI:
    KL: 0.5 * T^2 * sum_i KL(softmax(t_i / T) || softmax(s_i / T));
    reg: sum_i conf_i * sum_j |ds_ij - dt_ij| / (5 * sum_i conf_i), with conf_i and the class
    the teacher's top foreground softmax probability (background last), and the deltas those
    of that class (class-agnostic here: the 5 deltas of the RoI)."""
    with torch.no_grad():
        out_s = roi_head._bbox_forward(feats_s, rois)
        out_t = roi_head._bbox_forward(feats_t, rois)
    ls, lt = out_s["cls_score"].double(), out_t["cls_score"].double()
    ds, dt = out_s["bbox_pred"].double(), out_t["bbox_pred"].double()
    assert ds.shape[1] == 5  # class-agnostic oriented deltas
    kl, conf_sum, l1_sum = 0.0, 0.0, 0.0
    for i in range(ls.shape[0]):
        q_s = torch.exp(ls[i] / TEMPERATURE) / torch.exp(ls[i] / TEMPERATURE).sum()
        q_t = torch.exp(lt[i] / TEMPERATURE) / torch.exp(lt[i] / TEMPERATURE).sum()
        kl += sum(q_t[k].item() * (torch.log(q_t[k]) - torch.log(q_s[k])).item()
                  for k in range(len(q_t)))
        probs = torch.exp(lt[i]) / torch.exp(lt[i]).sum()
        conf = probs[:-1].max().item()
        conf_sum += conf
        l1_sum += conf * sum(abs(ds[i, j].item() - dt[i, j].item()) for j in range(5))
    return 0.5 * TEMPERATURE**2 * kl, l1_sum / (5 * conf_sum)


def test_oriented_rcnn_is_distilled_on_rotated_rois_by_the_published_formulas(rotate_scope):
    model = build_rot(distiller(tiny_oriented_rcnn(), tiny_oriented_rcnn(width=16),
                                amplifiers=dict(full=0.9, high=1.3)))
    assert type(model.strategy).__name__ == "TwoStageStrategy"
    assert model.strategy.box_type(model.student) == "rotated"
    assert type(model.kd_cls).__name__ == "KDKLDivLoss" and type(model.kd_reg).__name__ == "L1Loss"
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 30 + i)
    inputs, samples = rotated_batch(model, size=96)
    losses, rois = loss_and_sampled_rois(model, inputs, samples)
    assert rois.shape[1] == 6 and len(rois) > 10  # batch index + cx, cy, w, h, angle

    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(inputs))
    full_amp, high_amp = (a.head for a in model.amplifiers)
    assert type(full_amp.bbox_roi_extractor).__name__ == "RotatedSingleRoIExtractor"
    full = rotated_rcnn_kd(full_amp, x, t, rois)
    high = rotated_rcnn_kd(high_amp, [haar_high_upsampled(f) for f in x],
                           [haar_high_upsampled(f) for f in t], rois)
    expected = {"loss_imp_full_cls": 0.9 * full[0], "loss_imp_full_reg": 0.9 * full[1],
                "loss_imp_high_cls": 1.3 * high[0], "loss_imp_high_reg": 1.3 * high[1]}
    for key, value in expected.items():
        assert value != 0, key
        assert float(losses[key]) == pytest.approx(value, rel=1e-4), key
    loss = total(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert model.student.backbone.conv1.weight.grad is not None


def test_implicit_terms_vanish_when_student_and_teacher_maps_are_equal(rotate_scope):
    model = build_rot(distiller(tiny_oriented_rcnn(), tiny_oriented_rcnn(),
                                amplifiers=dict(full=1.0, high=1.0)))
    model.student.load_state_dict(model.teacher.state_dict())
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 40 + i)
    model.student.eval()  # the teacher's batch norms are frozen in eval mode too
    inputs, samples = rotated_batch(model, size=96)
    losses = model.loss(inputs, samples)
    for key in ("loss_imp_full_cls", "loss_imp_full_reg", "loss_imp_high_cls",
                "loss_imp_high_reg"):
        assert abs(float(losses[key])) < 1e-6, (key, float(losses[key]))
    # and they do not when the maps differ
    perturb(model.student.neck, 50)
    losses = model.loss(inputs, samples)
    assert float(losses["loss_imp_full_cls"]) > 1e-6 and float(losses["loss_imp_full_reg"]) > 1e-6


def test_horizontal_faster_rcnn_teacher_for_an_oriented_student_is_refused(rotate_scope):
    from ds2d2_testlib import build, tiny_faster_rcnn
    from mmengine.registry import DefaultScope

    from ds2d2_mm.models.distillers.strategies import TwoStageStrategy
    from ds2d2_mm.utils.errors import ConfigError

    student = build_rot(tiny_oriented_rcnn())
    with DefaultScope.overwrite_default_scope("mmdet"):
        teacher = build(tiny_faster_rcnn(width=16, fpn=16, num_classes=3))
    with pytest.raises(ConfigError, match="student predicts rotated boxes and the teacher "
                                          "horizontal"):
        TwoStageStrategy().check_pair(student, teacher)


@pytest.mark.parametrize("family", ["rotated_retinanet", "oriented_rcnn"])
def test_exported_student_is_a_stock_mmrotate_checkpoint(family, rotate_scope, tmp_path):
    from mmengine.runner import load_checkpoint

    from ds2d2_mm.apis.export_student import export_student

    tiny = tiny_rotated_retinanet if family == "rotated_retinanet" else tiny_oriented_rcnn
    model = build_rot(distiller(tiny(), tiny(width=16)))
    perturb(model.student, 60)
    ckpt = tmp_path / "distiller.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 1}}, ckpt)
    counts = export_student(str(ckpt), str(tmp_path / "student.pth"))
    assert counts["dropped"] > 0  # the adapter (and nothing of the frozen teacher) left out

    stock = build_rot(tiny(), seed=123)  # mmrotate's own config, other random weights
    load_checkpoint(stock, str(tmp_path / "student.pth"), map_location="cpu", strict=True)
    model.eval()
    stock.eval()
    inputs, samples = rotated_batch(stock, size=96, training=False)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        theirs = stock.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, theirs, strict=True):
        pa, pb = a.pred_instances, b.pred_instances
        assert len(pa) > 0
        boxes_a, boxes_b = (getattr(b, "tensor", b) for b in (pa.bboxes, pb.bboxes))
        assert boxes_a.shape[-1] == 5 and torch.equal(boxes_a, boxes_b)
        assert torch.equal(pa.scores, pb.scores) and torch.equal(pa.labels, pb.labels)
