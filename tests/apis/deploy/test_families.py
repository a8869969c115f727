"""Which detectors have an export path; the refusals name the model."""

from __future__ import annotations

import pytest
import torch
from ds2d2_testlib import build, tiny_retinanet
from mmengine.structures import InstanceData

from ds2d2_mm.apis.deploy.families import check_config_model, detector_family
from ds2d2_mm.apis.deploy.parity import compare_detections
from ds2d2_mm.utils.errors import ConfigError


def test_distiller_config_is_refused():
    with pytest.raises(ConfigError, match="x.py: model.type='SpectralDistiller'"):
        check_config_model({"type": "SpectralDistiller"}, "x.py")


def test_retinanet_is_dense():
    assert detector_family(build(tiny_retinanet())) == "dense"


class _Sample:
    def __init__(self, bboxes, scores, labels):
        self.pred_instances = InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32),
                                           scores=torch.tensor(scores),
                                           labels=torch.tensor(labels))


def test_compare_detections_tolerances():
    ref = [_Sample([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.8], [1, 2])]
    near = [_Sample([[0, 0, 10.0005, 10], [5, 5, 20, 20]], [0.90005, 0.8], [1, 2])]
    assert compare_detections(ref, near)["passed"]
    swapped = [_Sample([[5, 5, 20, 20], [0, 0, 10, 10]], [0.8, 0.9], [2, 1])]
    assert compare_detections(ref, swapped)["passed"]  # order of near-equal scores is free
    for bad in ([_Sample([[0, 0, 10.002, 10], [5, 5, 20, 20]], [0.9, 0.8], [1, 2])],
                [_Sample([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9002, 0.8], [1, 2])],
                [_Sample([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.8], [0, 2])],
                [_Sample([[0, 0, 10, 10]], [0.9], [1])]):
        result = compare_detections(ref, bad)
        assert not result["passed"] and result["unmatched"] >= 1


def test_rotated_detectors_are_refused_by_name(rotate_scope):  # last: it sets the scope
    from rotated_testlib import build_rot, tiny_rotated_retinanet

    model = build_rot(tiny_rotated_retinanet())
    with pytest.raises(ConfigError, match=r"RetinaNet \(RetinaHead\) is a rotated detector"):
        detector_family(model)
