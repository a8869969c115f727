"""ATSS and GFL: one square anchor per location, assigned by adaptive training sample selection.

Both heads' ``get_targets`` return ``(anchors, labels, label_weights, bbox_targets,
bbox_weights, avg_factor)``; the amplifier head's own assignment is ``get_anchors`` then
``get_targets``, as their ``loss_by_feat`` does (:meth:`DenseHeadStrategy.own_targets`).
"""

from __future__ import annotations

import torch
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor

from .base import STRATEGIES
from .dense_points import DenseHeadStrategy, level_strides


class _AnchorBoxes(DenseHeadStrategy):
    """Priors are the head's anchor boxes (A, 4), level by level."""

    def priors(self, head, sizes, device) -> Tensor:
        return torch.cat(head.prior_generator.grid_priors(sizes, device=device))


@STRATEGIES.register_module()
class ATSSStrategy(_AnchorBoxes):
    """ATSS (mmdet's ``ATSSHead``): anchor deltas decoded by the head's ``DeltaXYWHBBoxCoder``;
    the centerness branch enters no KD term."""

    head_types = ("ATSSHead",)

    def decode_outputs(self, head, outputs, priors, producer) -> Tensor:
        n = outputs[0][0].shape[0]
        deltas = self.flatten(outputs[1], 4).reshape(-1, 4)
        return get_box_tensor(head.bbox_coder.decode(priors.repeat(n, 1), deltas))


@STRATEGIES.register_module()
class GFLStrategy(_AnchorBoxes):
    """GFL (mmdet's ``GFLHead``): the box branch is a discrete distribution over ``0..reg_max``
    per side; its expectation (the head's ``Integral``) times the level's stride is the distance
    from the anchor centre, decoded by the head's ``DistancePointBBoxCoder`` as GFL predicts.
    The distribution itself is compared through the decoded boxes (the published rule); a
    distribution-level term (localisation distillation) would be another method."""

    head_types = ("GFLHead",)

    def decode_outputs(self, head, outputs, priors, producer) -> Tensor:
        n = outputs[0][0].shape[0]
        sizes = [m.shape[-2:] for m in outputs[0]]
        bins = head.reg_max + 1
        dist = head.integral(self.flatten(outputs[1], 4 * bins).reshape(-1, 4 * bins))
        strides = level_strides(head, sizes, dist.device).repeat(n)
        centers = head.anchor_center(priors).repeat(n, 1)
        return get_box_tensor(head.bbox_coder.decode(centers, dist * strides[:, None]))
