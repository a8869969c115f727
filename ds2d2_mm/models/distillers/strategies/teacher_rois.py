"""A two-stage teacher's RoI head as the amplifier of a student of another family (an extension:
the published method pairs detectors of one family)."""

from __future__ import annotations

from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from torch import Tensor

from .base import STRATEGIES, StudentPass
from .two_stage import TwoStageStrategy

#: Where :meth:`TeacherRoIStrategy.teacher_extras` leaves the RoIs in the amplifiers' pass.
TEACHER_ROIS = "teacher_rois"


@STRATEGIES.register_module()
class TeacherRoIStrategy(TwoStageStrategy):
    """Two-stage KD of :class:`TwoStageStrategy` on RoIs the teacher samples itself.

    A one-stage student samples no RoIs, so the RoIs are computed on the amplifier's side: the
    teacher's RPN on the teacher's FPN maps gives proposals (its ``train_cfg.rpn_proposal``, as
    ``TwoStageDetector.loss`` makes them), which the teacher's RoI head assigns to the ground
    truth and samples with its own ``bbox_assigner`` and ``bbox_sampler`` (ground truth added as
    proposals, as ``StandardRoIHead.loss`` does). Both amplifiers compare the student's and the
    teacher's RoI-head outputs on these RoIs, with the published KD losses of the two-stage family.
    """

    def teacher_extras(self, teacher: BaseDetector, feats_t: list[Tensor],
                       samples: SampleList) -> dict[str, Any]:
        """``{TEACHER_ROIS: (R, 1 + B) RoIs}`` sampled from the teacher's proposals."""
        metas = [s.metainfo for s in samples]
        train_cfg = teacher.train_cfg or {}
        proposal_cfg = train_cfg.get("rpn_proposal", teacher.test_cfg.rpn)
        roi_head = teacher.roi_head
        sampled = []
        with torch.no_grad():
            outs = teacher.rpn_head(list(feats_t))
            proposals = teacher.rpn_head.predict_by_feat(*outs, batch_img_metas=metas,
                                                         cfg=proposal_cfg, rescale=False)
            for i, (props, sample) in enumerate(zip(proposals, samples, strict=True)):
                props.priors = props.pop("bboxes")
                ignored = sample.get("ignored_instances", None)
                assign = roi_head.bbox_assigner.assign(props, sample.gt_instances, ignored)
                sampled.append(roi_head.bbox_sampler.sample(
                    assign, props, sample.gt_instances, feats=[f[i][None] for f in feats_t]))
        return {TEACHER_ROIS: bbox2roi([get_box_tensor(r.priors).detach() for r in sampled])}

    @staticmethod
    def sampled_rois(sp: StudentPass) -> Tensor:
        """The RoIs the teacher sampled for this batch (:meth:`teacher_extras`)."""
        rois = sp.extras.get(TEACHER_ROIS)
        if rois is None:
            raise RuntimeError("TeacherRoIStrategy: the amplifiers' pass has no teacher RoIs; "
                               "it is made by the distiller's pair plan (pairing.PairPlan)")
        return rois
