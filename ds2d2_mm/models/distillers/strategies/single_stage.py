"""Dense anchor heads: RetinaNet and other ``AnchorHead`` subclasses (mmrotate's rotated
RetinaNet included)."""

from __future__ import annotations

from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.structures.bbox import cat_boxes, get_box_tensor
from torch import Tensor, nn

from ....utils.phases import phase
from ...losses.kd_losses import HBOXES, RBOXES, SIGMOID_LOGITS, SOFTMAX_LOGITS, safe_avg_factor
from .base import STRATEGIES, DistillStrategy, KDContext


@STRATEGIES.register_module()
class SingleStageStrategy(DistillStrategy):
    """Dense anchor heads (RetinaNet and other ``AnchorHead`` subclasses, mmrotate's rotated
    RetinaNet included, whose regression KD defaults to ``KDRotatedGDLoss``).

    Classification KD is weighted by the student assigner's label weights and normalised by its
    number of positives (both taken from the student's own ``get_targets`` call); regression KD
    compares boxes decoded from both predictions, weighted by the teacher's top class score and
    normalised by the same number of positives.
    """

    head_attrs = ("bbox_head",)

    def records(self, student: BaseDetector) -> dict[str, tuple[Any, str]]:
        """Also record the student head's anchor targets."""
        recs = super().records(student)
        if hasattr(student.bbox_head, "get_targets"):
            recs["targets"] = (student.bbox_head, "get_targets")
        return recs

    @staticmethod
    def flatten(preds: list[Tensor], dim: int) -> Tensor:
        """Per-level (N, A_l * dim, H, W) maps -> (N, sum_l H*W*A_l, dim)."""
        n = preds[0].shape[0]
        return torch.cat([p.permute(0, 2, 3, 1).reshape(n, -1, dim) for p in preds], dim=1)

    @staticmethod
    def rotated(head: nn.Module) -> bool:
        """Whether ``head`` decodes oriented boxes (mmrotate's rotated dense heads)."""
        coder = getattr(head, "bbox_coder", None)
        return getattr(coder, "encode_size", 4) == 5

    def box_type(self, detector: BaseDetector) -> str:
        """Rotated for mmrotate's rotated dense heads."""
        return "rotated" if self.rotated(self.amplifier_head(detector)) else "horizontal"

    def kd_inputs(self, student: BaseDetector) -> dict[str, str]:
        """Sigmoid (or softmax) logits, and decoded horizontal (or rotated) boxes."""
        head = student.bbox_head
        cls = SIGMOID_LOGITS if getattr(head, "use_sigmoid_cls", True) else SOFTMAX_LOGITS
        return {"kd_cls": cls, "kd_reg": RBOXES if self.rotated(head) else HBOXES}

    def default_kd_losses(self, student: BaseDetector) -> dict[str, dict]:
        """Published: QFL-style BCE (beta 1) and mmdet's GIoULoss; for oriented boxes this
        project's Gaussian-distance KD (an extension)."""
        reg = (dict(type="KDRotatedGDLoss", loss_type="kld", loss_weight=1.0)
               if self.rotated(student.bbox_head) else dict(type="mmdet.GIoULoss", loss_weight=1.0))
        return {"kd_cls": dict(type="KDQualityFocalLoss", beta=1.0, loss_weight=1.0),
                "kd_reg": reg}

    def decode(self, head: nn.Module, anchors: Tensor, deltas: Tensor) -> Tensor:
        """Boxes (M, 4) from anchors (M, 4) and deltas (M, D) with the head's coder."""
        return get_box_tensor(head.bbox_coder.decode(anchors, deltas))

    def label_weights(self, head: nn.Module, cls_t: list[Tensor],
                      ctx: KDContext) -> tuple[Tensor, Tensor | float]:
        """(N, A) label weights and the number of positives for the KD classification loss.

        Taken from the student's recorded targets when its anchors line up with the amplifier's;
        otherwise the amplifier head assigns the ground truth on its own grid.
        """
        num_anchors = sum(c.shape[-2] * c.shape[-1] for c in cls_t) * head.num_base_priors
        rec = ctx.student_pass.extras.get("targets")
        if rec is not None:
            label_weights_list, avg_factor = rec.output[1], rec.output[4]
            lw = ctx.shared(("recorded label weights",),
                            lambda: torch.cat(label_weights_list, dim=1).float())
            if lw.shape[1] == num_anchors:
                return lw, avg_factor
        metas = [s.metainfo for s in ctx.samples]
        gts = [s.gt_instances for s in ctx.samples]
        sizes = [c.shape[-2:] for c in cls_t]
        anchor_list, valid_list = head.get_anchors(sizes, metas, device=cls_t[0].device)
        targets = head.get_targets(anchor_list, valid_list, gts, metas)
        return torch.cat(targets[1], dim=1).float(), targets[4]

    def kd_losses(self, head: nn.Module, feats_s: list[Tensor], feats_t: list[Tensor],
                  ctx: KDContext, head_s: Any = None,
                  reg_only_where_labelled: bool = False) -> dict[str, Tensor]:
        """Amplified classification and regression KD (published normalisation).

        Classification: ``kd_cls`` on the (A, C) logits, weighted by the assigner's label
        weights, divided by its number of positive anchors. Regression: ``kd_reg`` between the
        boxes decoded from both predictions on the same anchors, weighted by the teacher's top
        sigmoid score over all anchors (no label-weight factor; with
        ``reg_only_where_labelled``, as CrossKD, zero where the label weight is zero), divided by
        the same number of positives. The student's predictions come from ``head_s(feats_s)``
        (default ``head``), the teacher's from ``head(feats_t)``.
        """
        with phase("head pass (student)"):
            cls_s, reg_s = (head if head_s is None else head_s)(feats_s)
        with torch.no_grad(), phase("head pass (teacher)"):
            cls_t, reg_t = head(feats_t)
        num_classes = head.cls_out_channels
        box_dim = reg_s[0].shape[1] // head.num_base_priors
        # fp32 from here on (a no-op in fp32; the KD terms stay fp32 under frozen-part fp16)
        logits_s = self.flatten(cls_s, num_classes).float()
        logits_t = self.flatten(cls_t, num_classes).float()
        deltas_s = self.flatten(reg_s, box_dim).float()
        deltas_t = self.flatten(reg_t, box_dim).float()
        with phase("targets and anchors"):
            lw, num_pos = self.label_weights(head, cls_t, ctx)
            sizes = [tuple(c.shape[-2:]) for c in cls_t]
            device, batch = cls_t[0].device, logits_s.shape[0]
            # (N * A, D) anchors: a Tensor, or RotatedBoxes for mmrotate's rotated heads
            anchors = ctx.shared(
                ("anchors", repr(head.prior_generator), tuple(sizes), batch, str(device)),
                lambda: cat_boxes([cat_boxes(head.prior_generator.grid_priors(
                    sizes, device=device))] * batch))
        avg = safe_avg_factor(num_pos)
        with phase("KD losses"):
            loss_cls = ctx.kd_cls(logits_s.reshape(-1, num_classes),
                                  logits_t.reshape(-1, num_classes),
                                  weight=lw.reshape(-1), avg_factor=avg)
        with phase("box decoding"):
            boxes_s = self.decode(head, anchors, deltas_s.reshape(-1, box_dim)).float()
            with torch.no_grad():
                boxes_t = self.decode(head, anchors, deltas_t.reshape(-1, box_dim)).float()
                top_score = logits_t.reshape(-1, num_classes).sigmoid().max(dim=1).values
                if reg_only_where_labelled:
                    top_score = top_score * (lw.reshape(-1) > 0)
        with phase("KD losses"):
            loss_reg = ctx.kd_reg(boxes_s, boxes_t, weight=top_score, avg_factor=avg)
        return {"cls": loss_cls, "reg": loss_reg}
