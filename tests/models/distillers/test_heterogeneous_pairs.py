"""Teachers of another family than the student (this project's extension): the amplifiers are the
teacher's heads with the teacher's KD, the targets are made on the amplifier's grid, the student's
FPN levels meet the teacher's by stride; pairs that cannot be compared are refused at build,
naming both families."""

from __future__ import annotations

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch, tiny_faster_rcnn, tiny_retinanet
from families_testlib import tiny_dense, tiny_rtmdet
from test_published_formulas import hf_map, perturb, retina_kd

from ds2d2_mm.utils.errors import ConfigError

TERMS = ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
         "loss_imp_high_cls", "loss_imp_high_reg")


def total(losses: dict) -> torch.Tensor:
    return sum(sum(v) if isinstance(v, (list, tuple)) else v
               for k, v in losses.items() if "loss" in k)


def test_retinanet_teacher_rtmdet_student_terms_are_retinanets_on_the_teachers_grid():
    """RTMDet student (strides 8-32, 16 channels), RetinaNet teacher (strides 8-128, 32
    channels): the amplifiers read the connected student maps on the teacher's five levels (the
    two coarsest made by stride-2 max-pooling of the student's stride-32 map) and their KD is
    RetinaNet's, with label weights and positives from the teacher head's own anchor targets."""
    model = build(distiller_cfg(tiny_rtmdet(fpn=16), tiny_retinanet(width=16, fpn=32),
                                amplifiers=dict(full=0.9, high=1.3)))
    assert model.pair.heterogeneous
    assert type(model.strategy).__name__ == "RTMDetStrategy"
    assert type(model.pair.amplifier_strategy).__name__ == "SingleStageStrategy"
    assert model.pair.levels.sources == ((0, 0), (1, 0), (2, 0), (2, 1), (2, 2))
    assert type(model.kd_reg).__name__ == "GIoULoss" and not model.amplifier_reads_raw
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 70 + i)
    model.train()
    inputs, samples = make_batch(model, size=128, num_boxes=[3, 2])
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(losses[k]) for k in TERMS)

    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        # the teacher reads the batch in its own normalisation (RGB, ImageNet's mean and std;
        # RTMDet's preprocessor keeps BGR): the input router renormalises it
        t = list(model.teacher.extract_feat(model.router.teacher_inputs(inputs)))
        pooled = [x[0], x[1], x[2], x[2][..., ::2, ::2], x[2][..., ::4, ::4]]
        w = model.connector.convs[0].weight[:, :, 0, 0]
        a = [torch.einsum("oi,nihw->nohw", w, f) for f in pooled]
    assert [f.shape[-2:] for f in a] == [f.shape[-2:] for f in t]
    head = model.teacher.bbox_head
    metas = [s.metainfo for s in samples]
    anchor_list, valid = head.get_anchors([f.shape[-2:] for f in t], metas, device="cpu")
    targets = head.get_targets(anchor_list, valid, [s.gt_instances for s in samples], metas)
    labels = torch.cat(targets[0], dim=1)
    num_pos = int(((labels >= 0) & (labels < head.num_classes)).sum())
    assert num_pos > 0
    lw = torch.cat(targets[1], dim=1).double()
    anchors = torch.cat(anchor_list[0]).double()
    full, high = (amp.head for amp in model.amplifiers)
    ref_full = retina_kd(full, a, t, lw, num_pos, anchors)
    ref_high = retina_kd(high, [hf_map(f) for f in a], [hf_map(f) for f in t], lw, num_pos,
                         anchors)
    for key, value in (("loss_imp_full_cls", 0.9 * ref_full[0]),
                       ("loss_imp_full_reg", 0.9 * ref_full[1]),
                       ("loss_imp_high_cls", 1.3 * ref_high[0]),
                       ("loss_imp_high_reg", 1.3 * ref_high[1])):
        assert float(losses[key]) == pytest.approx(value, rel=1e-4), key
    total(losses).backward()
    assert model.student.backbone.stem[0].conv.weight.grad is not None


#: (teacher, student) of two dense families: the amplifier head assigns on its own grid.
DENSE_PAIRS = [("atss", "fcos"), ("fcos", "atss"), ("rtmdet", "retinanet")]


def dense(family: str, width: int):
    if family == "retinanet":
        return tiny_retinanet(width=width, fpn=16)
    if family == "rtmdet":
        return tiny_rtmdet(widen=width / 64, fpn=16)
    return tiny_dense(family, width=width, fpn=16)


@pytest.mark.parametrize(("teacher", "student"), DENSE_PAIRS, ids=lambda v: v)
def test_dense_teacher_of_another_family_assigns_on_its_own_grid(teacher, student):
    """The amplifiers' terms are the teacher family's published rule, with label weights and
    positives from the amplifier head's own get_targets on its grid (RTMDet's from its own
    teacher-side predictions, per amplifier), the student's maps on the teacher's levels."""
    from test_dense_families import decode, dense_kd, head_targets

    model = build(distiller_cfg(dense(student, 8), dense(teacher, 16),
                                amplifiers=dict(full=0.9, high=1.3)))
    assert model.pair.heterogeneous and model.amplifier_reads_raw
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 80 + i)
    model.train()
    inputs, samples = make_batch(model, size=128, num_boxes=[3, 2])
    losses = model.loss(inputs, samples)
    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(model.router.teacher_inputs(inputs)))
    strides = model.pair.levels.student_strides
    x = [x[strides.index(s)] for s in model.pair.levels.teacher_strides]  # shared strides only
    for amp, w in zip(model.amplifiers, (0.9, 1.3), strict=True):
        xs, ts = (x, t) if amp.name == "full" else ([hf_map(f) for f in x], [hf_map(f) for f in t])
        with torch.no_grad():
            out_s, out_t = amp.head(xs), amp.head(ts)
            weights, num_pos = head_targets(teacher, amp.head, out_t, samples)
        assert num_pos > 0
        sizes = [c.shape[-2:] for c in out_t[0]]
        ls, bs = decode(teacher, amp.head, out_s, sizes)
        lt, bt = decode(teacher, amp.head, out_t, sizes)
        cls = reg = 0.0
        for i in range(len(samples)):
            c, r = dense_kd(ls[i], lt[i], bs[i], bt[i], weights[i], num_pos)
            cls, reg = cls + c, reg + r
        for key, value in ((f"loss_imp_{amp.name}_cls", w * cls),
                           (f"loss_imp_{amp.name}_reg", w * reg)):
            assert float(losses[key]) == pytest.approx(value, rel=1e-4), key


def test_two_stage_teacher_one_stage_student_trains_on_rois_the_teacher_samples():
    """Faster R-CNN teacher (strides 4-64) for an RTMDet student (8-32): the RoI head's KD
    (KL, L1 on deltas) on RoIs sampled from the teacher's own proposals; the stride-4 level is
    the student's stride-8 map resized."""
    model = build(distiller_cfg(tiny_rtmdet(fpn=16), tiny_faster_rcnn(width=16, fpn=16)))
    assert type(model.pair.amplifier_strategy).__name__ == "TeacherRoIStrategy"
    assert model.pair.levels.sources == ((0, -1), (0, 0), (1, 0), (2, 0), (2, 1))
    assert (type(model.kd_cls).__name__, type(model.kd_reg).__name__) == ("KDKLDivLoss",
                                                                          "L1Loss")
    model.train()
    inputs, samples = make_batch(model, size=128)
    seen = []
    original = model.pair.amplifier_strategy.teacher_extras

    def spy(*args):
        out = original(*args)
        seen.append(out["teacher_rois"])
        return out

    model.pair.amplifier_strategy.teacher_extras = spy
    losses = model.loss(inputs, samples)
    assert len(seen) == 1 and len(seen[0]) > 10  # once per batch, for both amplifiers
    assert all(torch.isfinite(losses[k]) for k in TERMS)
    assert float(losses["loss_imp_full_cls"]) > 0
    total(losses).backward()


@pytest.mark.parametrize(("teacher", "distill", "says"), [
    (lambda: tiny_retinanet(width=16, num_classes=5), {}, "3 classes and the teacher 5"),
    (lambda: tiny_retinanet(width=16), dict(implicit=dict(type="PredictionKD"),
                                            amplifiers=dict(full=0, high=0)),
     "of two families"),
    (lambda: tiny_dense("atss", width=16), dict(implicit=dict(type="PredictionKD"),
                                                amplifiers=dict(full=0, high=0)),
     "of two families"),
])
def test_pairs_that_cannot_be_compared_are_refused_naming_both_families(teacher, distill, says):
    with pytest.raises(ConfigError, match=r"student RTMDet \(RTMDetSepBNHead\).*teacher "
                                          rf"\w+ \(\w+\).*{says}|{says}.*student RTMDet"):
        build(distiller_cfg(tiny_rtmdet(), teacher(), **distill))


def test_levels_are_matched_by_stride_and_unmatchable_ones_refused():
    from ds2d2_mm.models.distillers.pairing import LevelMatch

    assert LevelMatch.of([8, 16, 32], [8, 16, 32], "pair").sources == ((0, 0), (1, 0), (2, 0))
    match = LevelMatch.of([8, 16, 32], [4, 8, 16, 32, 64, 128], "pair")
    assert match.sources == ((0, -1), (0, 0), (1, 0), (2, 0), (2, 1), (2, 2))
    maps = [torch.randn(1, 2, 32 // 2**i, 32 // 2**i) for i in range(3)]
    refs = [torch.zeros(1, 2, 64 // 2**i, 64 // 2**i) for i in range(6)]
    out = match(maps, refs)
    assert [tuple(o.shape[-2:]) for o in out] == [tuple(r.shape[-2:]) for r in refs]
    assert torch.equal(out[4], maps[2][..., ::2, ::2]) and out[1] is maps[0]
    # a student level the teacher lacks is not distilled
    assert LevelMatch.of([4, 8, 16, 32], [8, 16], "pair").sources == ((1, 0), (2, 0))
    with pytest.raises(ConfigError, match=r"pair: the teacher's FPN level of stride 12 "):
        LevelMatch.of([8, 16, 32], [12, 24], "pair")
    with pytest.raises(ConfigError, match=r"pair: the teacher's FPN level of stride 96"):
        LevelMatch.of([8, 16, 32], [8, 16, 32, 96], "pair")
    with pytest.raises(ConfigError, match=r"pair: no FPN stride in common"):
        LevelMatch.of([8, 16], [32, 64], "pair")


def test_same_family_pairs_stay_as_published():
    model = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16)))
    assert not model.pair.heterogeneous and model.pair.amplifier_strategy is model.strategy
    model.train()
    inputs, samples = make_batch(model)
    sp = model.strategy.student_pass(model.student, inputs, samples)
    assert model.pair.amplifier_pass(sp, [], samples, model.teacher) is sp


# mmrotate's scope from here on (a module-scoped fixture)
def test_oriented_rcnn_teacher_rotated_rtmdet_student_trains_one_iteration(rotate_scope):
    from families_testlib import tiny_rotated_rtmdet
    from rotated_testlib import build_rot, rotated_batch, tiny_oriented_rcnn

    model = build_rot(distiller_cfg(tiny_rotated_rtmdet(fpn=16), tiny_oriented_rcnn(width=16)))
    assert type(model.pair.amplifier_strategy).__name__ == "TeacherRoIStrategy"
    model.train()
    inputs, samples = rotated_batch(model, size=128)
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(losses[k]) for k in TERMS)
    total(losses).backward()
    assert model.student.backbone.stem[0].conv.weight.grad is not None


def test_a_rotated_student_with_a_horizontal_two_stage_teacher_is_refused(rotate_scope):
    from families_testlib import tiny_rotated_rtmdet
    from rotated_testlib import build_rot

    cfg = distiller_cfg(tiny_rotated_rtmdet(), dict(tiny_faster_rcnn(width=16, fpn=16),
                                                    _scope_="mmdet"))
    with pytest.raises(ConfigError, match=r"student RTMDet \(RotatedRTMDetSepBNHead\), teacher "
                                          r"FasterRCNN \(StandardRoIHead, Shared2FCBBoxHead\).*"
                                          "rotated boxes and the teacher horizontal"):
        build_rot(cfg)
