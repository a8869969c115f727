"""ONNX export of tiny students: ONNX Runtime predictions equal PyTorch's after NMS (boxes within
1e-3 px, same labels, scores within 1e-4) at another batch size and image size than the traced
ones; INT8 graphs build and predict; the check fails on a model that differs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from deploy_testlib import settle
from ds2d2_testlib import build, make_batch, tiny_faster_rcnn, tiny_retinanet
from families_testlib import tiny_dense, tiny_rtmdet

from ds2d2_mm.apis.deploy.export import export_graphs
from ds2d2_mm.apis.deploy.families import detector_family
from ds2d2_mm.apis.deploy.ort_runner import OrtDetector, make_session
from ds2d2_mm.apis.deploy.parity import BOX_TOL, SCORE_TOL, compare_detections
from ds2d2_mm.apis.deploy.quantize import quantize_graph

FAMILIES = {"retinanet": (tiny_retinanet, "dense"), "faster_rcnn": (tiny_faster_rcnn, "two_stage"),
            "fcos": (lambda: tiny_dense("fcos"), "dense"),
            "atss": (lambda: tiny_dense("atss"), "dense"), "rtmdet": (tiny_rtmdet, "dense")}


def exported(name: str):
    make, family = FAMILIES[name]
    model = settle(build(make()))
    assert detector_family(model) == family
    inputs, _ = make_batch(model, batch_size=1, size=64, training=False)
    graphs = export_graphs(model, family, inputs)
    return model, graphs, OrtDetector(model, {g.name: make_session(g.onnx_bytes) for g in graphs})


def predict_both(model, runner, batch_size=2, size=96, seed=1):
    inputs, samples = make_batch(model, batch_size=batch_size, size=size, training=False,
                                 seed=seed)
    with torch.no_grad():
        ref = model.predict(inputs, copy.deepcopy(samples))
    return ref, runner.predict(inputs, copy.deepcopy(samples))


@pytest.mark.parametrize("name", ["retinanet", "faster_rcnn"])
def test_ort_equals_pytorch_dynamic_batch_and_size(name):
    model, graphs, runner = exported(name)
    assert [g.name for g in graphs] == (["model"] if name == "retinanet"
                                        else ["features_rpn", "roi_head"])
    ref, got = predict_both(model, runner)
    result = compare_detections(ref, got)
    assert result["detections"] > 0  # a check on no detections would prove nothing
    assert result["passed"], result
    assert result["max_box_diff_px"] <= BOX_TOL and result["max_score_diff"] <= SCORE_TOL
    # in the order both produce them, too
    for r, g in zip(ref, got):
        a, b = r.pred_instances, g.pred_instances
        assert torch.equal(a.labels, b.labels)
        assert torch.allclose(a.bboxes, b.bboxes, atol=BOX_TOL, rtol=0)
        assert torch.allclose(a.scores, b.scores, atol=SCORE_TOL, rtol=0)


@pytest.mark.parametrize("name", ["fcos", "atss", "rtmdet"])
def test_other_dense_families_take_the_same_path(name):
    model, _, runner = exported(name)
    result = compare_detections(*predict_both(model, runner, batch_size=1, size=64))
    assert result["detections"] > 0 and result["passed"], result


def test_parity_fails_when_the_model_differs():
    model, _, runner = exported("retinanet")
    with torch.no_grad():
        model.bbox_head.retina_reg.bias.add_(0.05)  # boxes move by a fraction of a pixel or more
    result = compare_detections(*predict_both(model, runner))
    assert not result["passed"] and result["unmatched"] > 0


@pytest.mark.parametrize("name", ["retinanet", "faster_rcnn"])
def test_int8_builds_and_predicts(name):
    import onnx

    model, graphs, runner = exported(name)
    record: dict[str, list] = {}
    for seed in range(10, 18):  # calibration images of the test images' kind, not the same ones
        inputs, samples = make_batch(model, batch_size=1, size=96, training=False, seed=seed)
        runner.predict(inputs, samples, record=record)
    assert set(record) == {g.name for g in graphs}
    int8 = {}
    for g in graphs:
        data = quantize_graph(g.onnx_bytes, record[g.name])
        ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
        int8[g.name] = make_session(data)
    quantized = OrtDetector(model, int8)
    _, got = predict_both(model, runner, batch_size=2, size=96)
    out = quantized.predict(*make_batch(model, batch_size=2, size=96, training=False, seed=1))
    assert len(out) == 2
    for sample in out:
        inst = sample.pred_instances
        assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.labels) > 0
        assert torch.isfinite(inst.bboxes).all()
    # INT8 is close to fp32 (calibrated on images of the same kind), not equal
    top_fp32 = np.array([float(s.pred_instances.scores.max()) for s in got])
    top_int8 = np.array([float(s.pred_instances.scores.max()) for s in out])
    assert np.abs(top_fp32 - top_int8).max() < 0.02
