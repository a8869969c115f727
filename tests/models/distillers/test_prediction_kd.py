"""Prediction-level comparison methods in the implicit stream's place: plain prediction KD and
CrossKD, each recomputed from its definition inside the test (convolutions, channel statistics,
BCE, box decoding and GIoU by hand) and run through the distiller."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ds2d2_testlib import build, distiller_cfg, tiny_faster_rcnn, tiny_retinanet
from test_published_formulas import batch as boxes_batch
from test_published_formulas import (
    bce_with_soft_target,
    decode,
    giou,
    per_anchor,
    perturb,
    sigmoid,
)

from ds2d2_mm.models.distillers.prediction_kd import cross_head_predictions
from ds2d2_mm.utils.errors import ConfigError

OFF = dict(explicit=None, amplifiers=dict(full=0.0, high=0.0))


def retina(width: int, convs: int = 2) -> dict:
    cfg = tiny_retinanet(width=width, fpn=16)
    cfg["bbox_head"]["stacked_convs"] = convs
    return cfg


def targets(head, feats, samples):
    """Label weights (N, A) and number of positives of mmdet's own assignment; anchors (A, 4)."""
    sizes = [f.shape[-2:] for f in feats]
    metas = [s.metainfo for s in samples]
    anchor_list, valid_list = head.get_anchors(sizes, metas, device="cpu")
    t = head.get_targets(anchor_list, valid_list, [s.gt_instances for s in samples], metas)
    labels = torch.cat(t[0], dim=1)
    num_pos = int(((labels >= 0) & (labels < head.num_classes)).sum())
    return torch.cat(t[1], dim=1).double(), num_pos, torch.cat(anchor_list[0]).double()


def mimic_terms(cls_s, reg_s, cls_t, reg_t, label_weights, num_pos, anchors, beta,
                reg_only_where_labelled):
    """sum lw * BCE(s, sigma(t)) * |sigma(s) - sigma(t)|^beta / num_pos, and
    sum sigma(max t) [* (lw > 0)] * (1 - GIoU(dec(s), dec(t))) / num_pos."""
    c = cls_s[0].shape[1] // 9
    ls, lt = per_anchor(cls_s, c).double(), per_anchor(cls_t, c).double()
    ds, dt = per_anchor(reg_s, 4).double(), per_anchor(reg_t, 4).double()
    cls_sum, reg_sum = 0.0, 0.0
    for n in range(ls.shape[0]):
        p_t = sigmoid(lt[n])
        bce = bce_with_soft_target(ls[n], p_t) * (sigmoid(ls[n]) - p_t).abs() ** beta
        cls_sum += (label_weights[n][:, None] * bce).sum().item()
        weight = sigmoid(lt[n].max(dim=1).values)
        if reg_only_where_labelled:
            weight = weight * (label_weights[n] > 0)
        reg_sum += (weight * (1 - giou(decode(anchors, ds[n]), decode(anchors, dt[n])))).sum()
    return cls_sum / num_pos, float(reg_sum) / num_pos


def test_prediction_kd_equals_its_definition():
    cfg = distiller_cfg(retina(8), retina(16), implicit=dict(type="PredictionKD", weight=0.7),
                        kd_cls=dict(type="KDQualityFocalLoss", beta=0.0), **OFF)
    model = build(cfg)
    assert model.explicit is None and model.amplifiers == []
    perturb(model.teacher.bbox_head, 3)
    model.train()
    inputs, samples = boxes_batch(model)
    losses = model.loss(inputs, samples)
    assert not any(k.startswith(("loss_exp", "loss_imp")) for k in losses)
    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(inputs))
        cls_s, reg_s = model.student.bbox_head(x)  # the student's own head
        cls_t, reg_t = model.teacher.bbox_head(t)
    lw, num_pos, anchors = targets(model.student.bbox_head, x, samples)
    assert num_pos > 0
    cls, reg = mimic_terms(cls_s, reg_s, cls_t, reg_t, lw, num_pos, anchors, beta=0,
                           reg_only_where_labelled=False)
    assert float(losses["loss_pred_cls"]) == pytest.approx(0.7 * cls, rel=1e-4)
    assert float(losses["loss_pred_reg"]) == pytest.approx(0.7 * reg, rel=1e-4)
    sum(v for k, v in losses.items() if "loss" in k and not isinstance(v, list)).backward()
    assert model.student.bbox_head.retina_cls.weight.grad.abs().sum() > 0


#: Stacked convs of the CrossKD test heads: RetinaNet's 4, so every reuse index 0-4 is tried.
CROSS_CONVS = 4


def official_cross_predictions(student_head, teacher_head, idx, xs, xt):
    """CrossKD's cross-head predictions as the official RetinaNet computes them (jbwang1997/
    CrossKD, crosskd_retinanet.py), in float64: per branch, the map after ``idx`` convs of the
    head, each conv followed by its ReLU (the official code keeps the conv's output before calling
    ``activate``, but mmcv's ReLU is in place and overwrites it), the FPN map itself when
    idx = 0; each channel standardised over (N, H, W) with the unbiased std + 1e-6 and given the
    teacher's mean and std at the same place; ReLU when idx > 0; the teacher's convs idx.. (each
    with ReLU) and its output conv."""
    def w(module):
        return module.conv.weight.double(), module.conv.bias.double()

    cls_out, reg_out = [], []
    for x, y in zip(xs, xt, strict=True):
        for convs_s, convs_t, final, out in (
                (student_head.cls_convs, teacher_head.cls_convs, teacher_head.retina_cls, cls_out),
                (student_head.reg_convs, teacher_head.reg_convs, teacher_head.retina_reg, reg_out)):
            s, tt = x.double(), y.double()
            for i in range(idx):
                s = F.relu(F.conv2d(s, *w(convs_s[i]), padding=1))
                tt = F.relu(F.conv2d(tt, *w(convs_t[i]), padding=1))
            aligned = torch.empty_like(s)
            for c in range(s.shape[1]):
                sc, tc = s[:, c], tt[:, c]
                aligned[:, c] = (sc - sc.mean()) / (sc.std() + 1e-6) * tc.std() + tc.mean()
            feat = F.relu(aligned) if idx > 0 else aligned
            for i in range(idx, len(convs_t)):
                feat = F.relu(F.conv2d(feat, *w(convs_t[i]), padding=1))
            out.append(F.conv2d(feat, final.weight.double(), final.bias.double(), padding=1))
    return cls_out, reg_out


def not_in_place(head) -> None:
    """Give every ConvModule of ``head`` a ReLU that is not in place (mmcv's is)."""
    for module in head.modules():
        if isinstance(getattr(module, "activate", None), torch.nn.ReLU):
            module.activate = torch.nn.ReLU(inplace=False)


@pytest.mark.parametrize("inplace", [True, False], ids=["inplace-relu", "relu"])
@pytest.mark.parametrize("idx", range(CROSS_CONVS + 1))
def test_crosskd_equals_the_official_definition(idx, inplace):
    cfg = distiller_cfg(retina(8, CROSS_CONVS), retina(16, CROSS_CONVS),
                        implicit=dict(type="CrossKD", weight=1.3, reused_teacher_head_idx=idx),
                        **OFF)
    model = build(cfg)
    perturb(model.teacher.bbox_head, 4)
    perturb(model.student.bbox_head, 5)
    heads = (model.student.bbox_head, model.teacher.bbox_head)
    relus = [m.activate for h in heads for m in h.modules() if hasattr(m, "activate")]
    assert len(relus) == 4 * CROSS_CONVS and all(r.inplace for r in relus)  # mmcv's default
    if not inplace:
        for head in heads:
            not_in_place(head)
    model.train()
    inputs, samples = boxes_batch(model)
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(inputs))
        cross_cls, cross_reg = official_cross_predictions(*heads, idx, x, t)
        cls_t, reg_t = model.teacher.bbox_head(t)
        ours_cls, ours_reg = cross_head_predictions(*heads, idx, x, t)
    for ours, ref in ((ours_cls, cross_cls), (ours_reg, cross_reg)):
        for o, r in zip(ours, ref, strict=True):
            assert torch.allclose(o.double(), r, rtol=1e-5, atol=1e-5 * float(r.abs().max()))
    lw, num_pos, anchors = targets(model.student.bbox_head, x, samples)
    assert (lw == 0).any()  # some anchors are ignored: the regression mask matters
    cls, reg = mimic_terms(cross_cls, cross_reg, cls_t, reg_t, lw, num_pos, anchors, beta=1,
                           reg_only_where_labelled=True)
    assert float(losses["loss_crosskd_cls"]) == pytest.approx(1.3 * cls, rel=1e-5)
    assert float(losses["loss_crosskd_reg"]) == pytest.approx(1.3 * reg, rel=1e-5)
    _, unmasked = mimic_terms(cross_cls, cross_reg, cls_t, reg_t, lw, num_pos, anchors, beta=1,
                              reg_only_where_labelled=False)
    assert unmasked != pytest.approx(reg, rel=1e-4)
    # gradients reach the student's head convs 1..idx (none when idx = 0) and its FPN maps,
    # through the frozen teacher layers only
    sum(v for k, v in losses.items() if k.startswith("loss_crosskd")).backward()
    head = model.student.bbox_head
    for convs in (head.cls_convs, head.reg_convs):
        assert all(c.conv.weight.grad.abs().sum() > 0 for c in convs[:idx])
        assert all(c.conv.weight.grad is None for c in convs[idx:])
    assert head.retina_cls.weight.grad is None and head.retina_reg.weight.grad is None
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


@pytest.mark.parametrize("implicit", [dict(type="PredictionKD"),
                                      dict(type="CrossKD", reused_teacher_head_idx=1)])
def test_terms_vanish_when_student_and_teacher_are_the_same(implicit):
    model = build(distiller_cfg(retina(8), retina(8), implicit=implicit, **OFF))
    model.student.load_state_dict(model.teacher.state_dict())
    model.student.eval()  # batch norms as the frozen teacher's
    inputs, samples = boxes_batch(model)
    losses = model.loss(inputs, samples)
    name = "pred" if implicit["type"] == "PredictionKD" else "crosskd"
    same = {key: abs(float(losses[key])) for key in (f"loss_{name}_cls", f"loss_{name}_reg")}
    assert all(v < 1e-4 for v in same.values()), same  # CrossKD: up to its std's 1e-6 guard
    perturb(model.student.bbox_head, 6)
    losses = model.loss(inputs, samples)
    for key, value in same.items():
        assert float(losses[key]) > 100 * max(value, 1e-6), key


def test_prediction_kd_on_faster_rcnn_uses_the_student_roi_head():
    model = build(distiller_cfg(tiny_faster_rcnn(), tiny_faster_rcnn(width=16),
                                implicit=dict(type="PredictionKD"), **OFF))
    model.train()
    inputs, samples = boxes_batch(model)
    losses = model.loss(inputs, samples)
    assert torch.isfinite(losses["loss_pred_cls"]) and float(losses["loss_pred_cls"]) > 0
    losses["loss_pred_cls"].backward()
    assert model.student.roi_head.bbox_head.fc_cls.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("student, implicit, extra, says", [
    (retina(8), dict(type="CrossKD"), dict(amplifiers=dict(full=1.0, high=0.0)),
     r"takes the amplifiers' place, but amplifiers \['full'\] are on"),
    (retina(8), dict(type="CrossKD", reused_teacher_head_idx=3), {},
     r"reused_teacher_head_idx=3: the student head has 2 stacked convs"),
    (tiny_faster_rcnn(), dict(type="CrossKD"), {}, "CrossKD takes RetinaNet heads"),
    (retina(8), dict(type="CrossKD", reused_teacher_head_idx=1, bogus=1), {},
     r"distill_cfg.implicit: unknown keys \['bogus'\]"),
])
def test_bad_implicit_configs_are_refused_with_the_key(student, implicit, extra, says):
    teacher = copy.deepcopy(student)
    if "roi_head" in teacher:
        teacher = tiny_faster_rcnn(width=16)
    distill = {**OFF, **extra}
    with pytest.raises(ConfigError, match=says):
        build(distiller_cfg(student, teacher, implicit=implicit, **distill))
