"""RTMDet-R (mmrotate's ``RotatedRTMDetHead`` and ``RotatedRTMDetSepBNHead``): RTMDet's point
head with an angle branch; boxes are oriented, so the regression KD defaults to this project's
Gaussian-distance ``KDRotatedGDLoss`` (the published method distils horizontal boxes only)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import STRATEGIES
from .dense_points import RTMDetStrategy


@STRATEGIES.register_module()
class RotatedRTMDetStrategy(RTMDetStrategy):
    """RTMDet-R: ``(l, t, r, b)`` distances and the angle decoded by the head's ``angle_coder``
    (``PseudoAngleCoder``: the raw angle), concatenated to (l, t, r, b, angle) and decoded to
    (cx, cy, w, h, angle) boxes by its ``DistanceAnglePointCoder`` on the point priors; the
    targets are those of ``RotatedRTMDetHead.get_targets`` (labels at 1, label weights at 2),
    whose assigner reads the decoded oriented boxes."""

    head_types = ("RotatedRTMDetHead",)
    #: Sides of at least 2 px: a thinner box's Gaussian is not kept positive-definite in float32
    #: (its covariance determinant cancels to 0 or below), and the KL distance turns infinite.
    min_distance = 1.0

    @staticmethod
    def rotated(head: nn.Module) -> bool:
        """RTMDet-R heads predict oriented boxes."""
        return True

    def box_branch(self, head, outputs) -> Tensor:
        """(N * A, 5) distances and decoded angle."""
        dist = self.flatten(outputs[1], 4).reshape(-1, 4)
        angle = self.flatten(outputs[2], head.angle_coder.encode_size).reshape(
            -1, head.angle_coder.encode_size)
        return torch.cat([dist, head.angle_coder.decode(angle, keepdim=True)], dim=-1)
