"""RTMDet-R (mmrotate): every implicit KD term against the published single-stage rule with the
Gaussian-distance box KD (the oracles of test_dense_families.py), and the exported student in
mmrotate's stock config."""

from __future__ import annotations

import copy

import pytest
import torch
from ds2d2_testlib import distiller_cfg
from test_published_formulas import perturb

pytest.importorskip("mmrotate")
from families_testlib import tiny_rotated_rtmdet  # noqa: E402
from test_dense_families import WEIGHTS, check, implicit_oracle, predicting  # noqa: E402


def test_rotated_rtmdet_terms_equal_the_published_rule_with_gaussian_kd(rotate_scope):
    from rotated_testlib import build_rot, rotated_batch

    model = build_rot(distiller_cfg(tiny_rotated_rtmdet(), tiny_rotated_rtmdet(widen=0.25),
                                    **WEIGHTS))
    assert type(model.strategy).__name__ == "RotatedRTMDetStrategy"
    assert type(model.kd_reg).__name__ == "KDRotatedGDLoss"
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 30 + i)
    model.train()
    inputs, samples = rotated_batch(model, boxes=(4, 3), size=96)
    losses = model.loss(inputs, samples)
    check(losses, implicit_oracle("rotated_rtmdet", model, inputs, samples))


def test_exported_rotated_rtmdet_predicts_the_same_in_mmrotates_config(rotate_scope, tmp_path):
    from mmengine.runner import load_checkpoint
    from rotated_testlib import build_rot, rotated_batch

    from ds2d2_mm.apis.export_student import export_student

    model = build_rot(distiller_cfg(predicting(tiny_rotated_rtmdet()),
                                    tiny_rotated_rtmdet(widen=0.25)))
    perturb(model.student, 61)
    ckpt = tmp_path / "distiller.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 1}}, ckpt)
    export_student(str(ckpt), str(tmp_path / "student.pth"))
    stock = build_rot(predicting(tiny_rotated_rtmdet()), seed=123)
    load_checkpoint(stock, str(tmp_path / "student.pth"), map_location="cpu", strict=True)
    model.eval()
    stock.eval()
    inputs, samples = rotated_batch(stock, size=96, training=False)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        theirs = stock.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, theirs, strict=True):
        boxes_a, boxes_b = (getattr(p.pred_instances.bboxes, "tensor", p.pred_instances.bboxes)
                            for p in (a, b))
        assert len(boxes_a) > 0 and boxes_a.shape[-1] == 5 and torch.equal(boxes_a, boxes_b)
