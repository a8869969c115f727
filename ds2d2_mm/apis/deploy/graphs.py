"""The modules that are exported: the network alone, its outputs as a flat tuple of tensors.

Inputs are the detector's preprocessed batch ``(N, C, H, W)`` (the output of its
``data_preprocessor``: normalised, padded); N, H and W are dynamic axes. Decoding, thresholds and
NMS stay outside, in the family's own post-processing (:mod:`.ort_runner`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor
from torchvision.ops import roi_align


def flatten_groups(outs: tuple) -> tuple[list[Tensor], list[int]]:
    """``(group_0, group_1, ...)`` of per-level lists -> flat tensors and the group sizes."""
    flat, sizes = [], []
    for group in outs:
        group = list(group)
        if any(t is None for t in group):
            raise ValueError("a head output group holds None: not exportable as it is")
        flat += group
        sizes.append(len(group))
    return flat, sizes


def regroup(flat: list, sizes: list[int]) -> tuple[list, ...]:
    """Inverse of :func:`flatten_groups`."""
    out, i = [], 0
    for n in sizes:
        out.append(list(flat[i:i + n]))
        i += n
    return tuple(out)


class DenseGraph(nn.Module):
    """Backbone, neck and dense head of a single-stage detector.

    ``forward(inputs (N, C, H, W))`` -> the head's output groups flattened, e.g. RetinaNet's
    ``cls_score_l (N, A*K, H_l, W_l)`` for every level ``l``, then ``bbox_pred_l (N, A*4, H_l,
    W_l)``.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: Tensor) -> tuple[Tensor, ...]:
        feats = self.detector.extract_feat(inputs)
        flat, _ = flatten_groups(self.detector.bbox_head(feats))
        return tuple(flat)


class FeatureRPNGraph(nn.Module):
    """Backbone, neck and RPN head of a two-stage detector.

    ``forward(inputs (N, C, H, W))`` -> ``feat_l (N, C', H_l, W_l)`` for every FPN level, then the
    RPN's ``cls_score_l (N, A, H_l, W_l)`` and ``bbox_pred_l (N, A*4, H_l, W_l)``.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, inputs: Tensor) -> tuple[Tensor, ...]:
        feats = self.detector.extract_feat(inputs)
        flat, _ = flatten_groups(self.detector.rpn_head(feats))
        return (*feats, *flat)


class RoIGraph(nn.Module):
    """RoI feature extraction and box head of a ``StandardRoIHead``.

    ``forward(feat_0, ..., feat_{L-1}, rois (K, 5))`` -> ``cls_score (K, num_classes + 1)``,
    ``bbox_pred (K, 4 * num_classes)`` (or ``(K, 4)`` class-agnostic). ``rois`` rows are
    ``(batch index, x1, y1, x2, y2)`` in input pixels, K is dynamic.

    The extractor's level rule (``map_roi_levels``) is kept; RoIAlign is
    ``torchvision.ops.roi_align`` with the extractor's output size, scale, sampling ratio and
    ``aligned`` flag (the ONNX ``RoiAlign`` operator, ``half_pixel`` for ``aligned=True``). Every
    level pools every RoI and a level mask keeps each RoI's own level, which avoids the
    data-dependent indexing of the PyTorch extractor.
    """

    def __init__(self, roi_head: nn.Module) -> None:
        super().__init__()
        self.roi_head = roi_head
        self.extractor = roi_head.bbox_roi_extractor

    @property
    def num_inputs(self) -> int:
        return self.extractor.num_inputs

    def forward(self, *args: Tensor) -> tuple[Tensor, Tensor]:
        *feats, rois = args
        layers = self.extractor.roi_layers
        levels = self.extractor.map_roi_levels(rois, len(feats))
        out = None
        for i, (feat, layer) in enumerate(zip(feats, layers)):
            pooled = roi_align(feat, rois, tuple(layer.output_size), float(layer.spatial_scale),
                               int(layer.sampling_ratio), bool(layer.aligned))
            mask = (levels == i).to(pooled.dtype).view(-1, 1, 1, 1)
            out = pooled * mask if out is None else out + pooled * mask
        if self.roi_head.with_shared_head:
            out = self.roi_head.shared_head(out)
        cls_score, bbox_pred = self.roi_head.bbox_head(out)
        return cls_score, bbox_pred


def sample_rois(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """A few RoIs ``(K, 5)`` of several sizes inside an ``height x width`` input (for tracing)."""
    boxes = [[0, 0, 0, width * 0.25, height * 0.25], [0, 4, 4, width - 1, height - 1],
             [0, width * 0.3, height * 0.2, width * 0.6, height * 0.7]]
    return torch.tensor(boxes, dtype=torch.float32, device=device)
