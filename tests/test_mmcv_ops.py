"""The mmcv ops used by the supported detectors work on CPU in the built environment."""

from __future__ import annotations

import torch


def test_nms_keeps_the_best_of_overlapping_boxes():
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)


def test_roi_align_averages_a_constant_map():
    from mmcv.ops import RoIAlign

    feat = torch.full((1, 2, 16, 16), 3.0)
    rois = torch.tensor([[0, 2.0, 2.0, 10.0, 10.0]])
    out = RoIAlign(output_size=(4, 4), spatial_scale=1.0, sampling_ratio=2)(feat, rois)
    assert out.shape == (1, 2, 4, 4)
    assert torch.allclose(out, torch.full_like(out, 3.0))


def test_box_iou_rotated_matches_axis_aligned_iou():
    from mmcv.ops import box_iou_rotated

    a = torch.tensor([[5.0, 5.0, 10.0, 10.0, 0.0]])
    b = torch.tensor([[10.0, 5.0, 10.0, 10.0, 0.0]])
    iou = box_iou_rotated(a, b)
    assert abs(iou.item() - 50.0 / 150.0) < 1e-4


def test_nms_rotated_suppresses_duplicates():
    from mmcv.ops import nms_rotated

    boxes = torch.tensor([[5.0, 5.0, 10.0, 4.0, 0.3], [5.0, 5.0, 10.0, 4.0, 0.31],
                          [40.0, 40.0, 10.0, 4.0, 0.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms_rotated(boxes, scores, 0.5)
    assert sorted(keep.tolist()) == [0, 2]
