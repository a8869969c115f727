"""Two-stage detectors with a standard RoI head (Faster R-CNN and kin, mmrotate's Oriented
R-CNN)."""

from __future__ import annotations

from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.structures.bbox import bbox2roi, get_box_tensor
from torch import Tensor, nn

from ....utils.phases import phase
from ...losses.kd_losses import SIGMOID_LOGITS, SOFTMAX_LOGITS
from .base import DELTAS, STRATEGIES, DistillStrategy, KDContext, StudentPass


@STRATEGIES.register_module()
class TwoStageStrategy(DistillStrategy):
    """Two-stage detectors with a standard RoI head (Faster R-CNN and kin, and mmrotate's
    Oriented R-CNN, whose RoIs are rotated: its own RoI extractor pools them with rotated
    RoIAlign, and its deltas have 5 components).

    KD runs on the RoIs that the student's RoI head assigned and sampled from its own proposals:
    KL divergence with temperature on the class logits, and L1 on the regression deltas of the
    teacher's top foreground class weighted by the teacher's confidence in it.
    """

    head_attrs = ("roi_head",)

    def records(self, student: BaseDetector) -> dict[str, tuple[Any, str]]:
        """Also record the sampled RoIs passed to the student's box loss."""
        recs = super().records(student)
        recs["bbox_loss"] = (student.roi_head, "bbox_loss")
        return recs

    def num_classes(self, detector: BaseDetector) -> int | None:
        """Classes of the RoI head's box head."""
        return getattr(getattr(self.amplifier_head(detector), "bbox_head", None), "num_classes",
                       None)

    def box_type(self, detector: BaseDetector) -> str:
        """Rotated for RoI heads that regress oriented boxes (mmrotate's Oriented R-CNN:
        ``predict_box_type='rbox'``, a 5-component delta coder)."""
        bbox_head = getattr(self.amplifier_head(detector), "bbox_head", None)
        coder = getattr(bbox_head, "bbox_coder", None)
        rotated = (getattr(bbox_head, "predict_box_type", "hbox") == "rbox"
                   or getattr(coder, "encode_size", 4) == 5)
        return "rotated" if rotated else "horizontal"

    def kd_inputs(self, student: BaseDetector) -> dict[str, str]:
        """Softmax logits (C + 1 classes) and regression deltas of the RoI head."""
        loss_cls = getattr(student.roi_head.bbox_head, "loss_cls", None)
        cls = SIGMOID_LOGITS if getattr(loss_cls, "use_sigmoid", False) else SOFTMAX_LOGITS
        return {"kd_cls": cls, "kd_reg": DELTAS}

    def default_kd_losses(self, student: BaseDetector) -> dict[str, dict]:
        """Published: KL with T = 3, weight 0.5, summed over the RoIs; mmdet's L1Loss."""
        return {"kd_cls": dict(type="KDKLDivLoss", temperature=3.0, loss_weight=0.5,
                               reduction="sum"),
                "kd_reg": dict(type="mmdet.L1Loss", loss_weight=1.0)}

    @staticmethod
    def sampled_rois(sp: StudentPass) -> Tensor:
        """(R, 1 + B) RoIs (batch index, then 4 horizontal or 5 oriented box components) that
        the student's RoI head sampled in its own loss call."""
        rec = sp.extras.get("bbox_loss")
        if rec is None:
            raise RuntimeError("TwoStageStrategy: the student's roi_head.bbox_loss was not called")
        args, kwargs = rec.args[-1], rec.kwargs[-1]
        sampling_results = args[1] if len(args) > 1 else kwargs["sampling_results"]
        return bbox2roi([get_box_tensor(r.priors).detach() for r in sampling_results])

    def kd_losses(self, head: nn.Module, feats_s: list[Tensor], feats_t: list[Tensor],
                  ctx: KDContext, head_s: Any = None) -> dict[str, Tensor]:
        """Amplified KD on the RoIs sampled from the student's proposals (published).

        Classification: ``kd_cls`` on the (R, C + 1) logits (KL with temperature, summed over
        RoIs). Regression: ``kd_reg`` between the deltas of the teacher's top foreground class
        (softmax at T = 1 over all logits, background dropped) of student and teacher, weighted
        per RoI by that class's probability ``conf`` and divided by ``D * sum(conf)`` (D delta
        components: 4, or 5 for oriented RoIs). The student's outputs come from ``head_s``
        (default ``head``), an RoI head too.
        """
        with phase("targets and anchors"):
            rois = ctx.shared(("sampled rois",), lambda: self.sampled_rois(ctx.student_pass))
        with phase("head pass (student)"):
            out_s = (head if head_s is None else head_s)._bbox_forward(feats_s, rois)
        with torch.no_grad(), phase("head pass (teacher)"):
            out_t = head._bbox_forward(feats_t, rois)
        with phase("KD losses"):
            return self._kd_terms(head, out_s, out_t, ctx)

    @staticmethod
    def _kd_terms(head: nn.Module, out_s: dict, out_t: dict, ctx: KDContext) -> dict[str, Tensor]:
        """The KD terms of :meth:`kd_losses` from both sides' ``_bbox_forward`` outputs."""
        loss_cls = ctx.kd_cls(out_s["cls_score"], out_t["cls_score"])

        bbox_s, bbox_t = out_s["bbox_pred"].float(), out_t["bbox_pred"].float()
        with torch.no_grad():
            probs = out_t["cls_score"].float().softmax(dim=1)[:, :-1]  # drop background
            conf, top = probs.max(dim=1)
        box_dim = head.bbox_head.bbox_coder.encode_size
        if bbox_s.shape[1] != box_dim:  # class-specific regression: take the teacher's top class
            idx = (top[:, None] * box_dim + torch.arange(box_dim, device=top.device)).long()
            bbox_s, bbox_t = bbox_s.gather(1, idx), bbox_t.gather(1, idx)
        weight = conf[:, None].expand_as(bbox_s)
        loss_reg = ctx.kd_reg(bbox_s, bbox_t, weight=weight, avg_factor=conf.sum() * box_dim)
        return {"cls": loss_cls, "reg": loss_reg}
