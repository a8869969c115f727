"""Per-family distillation strategies: what differs between detector families.

A strategy knows, for its family, (1) how to run the student's own task loss while keeping what
that call computed (FPN features, assigner targets, sampled RoIs), (2) which part of a detector is
an amplifier head, and (3) how to turn amplified predictions of student and teacher features into
KD losses. :class:`~ds2d2_mm.distiller.SpectralDistiller` holds one strategy and stays the same
class for every family. New families (e.g. rotated students) subclass a strategy and override the
few methods that differ.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi, cat_boxes, get_box_tensor
from mmengine.registry import Registry
from torch import Tensor, nn

from .losses.kd import safe_avg_factor
from .utils import record_call

STRATEGIES = Registry("ds2d2 distill strategy", locations=["ds2d2_mm.strategies"])


@dataclass
class StudentPass:
    """What the student's loss call produced: its losses, FPN features and family extras."""

    losses: dict[str, Tensor]
    feats: tuple[Tensor, ...]
    extras: dict[str, Any] = field(default_factory=dict)


class DistillStrategy:
    """Base class; subclasses implement one detector family."""

    #: Attribute names of the detector parts that form an amplifier head.
    head_attrs: tuple[str, ...] = ()

    def amplifier_head(self, detector: BaseDetector) -> nn.Module:
        """The head module of ``detector`` that serves as a knowledge amplifier."""
        for attr in self.head_attrs:
            head = getattr(detector, attr, None)
            if head is not None:
                return head
        raise ValueError(
            f"{type(self).__name__}: {type(detector).__name__} has none of {self.head_attrs}"
        )

    def records(self, student: BaseDetector) -> dict[str, tuple[Any, str]]:
        """Methods to record during the student's loss call: name -> (object, method)."""
        return {"feats": (student, "extract_feat")}

    def student_pass(self, student: BaseDetector, inputs: Tensor,
                     samples: SampleList) -> StudentPass:
        """Run ``student.loss`` once and keep the recorded intermediate results."""
        with contextlib.ExitStack() as stack:
            recs = {k: stack.enter_context(record_call(obj, m))
                    for k, (obj, m) in self.records(student).items()}
            losses = student.loss(inputs, samples)
        feats = recs.pop("feats").output
        extras = {k: r for k, r in recs.items() if r.called}
        return StudentPass(losses=losses, feats=tuple(feats), extras=extras)

    def kd_losses(self, head: nn.Module, feats_s: list[Tensor], feats_t: list[Tensor],
                  samples: SampleList, sp: StudentPass, kd_cls: nn.Module,
                  kd_reg: nn.Module) -> dict[str, Tensor]:
        """KD losses ``{'cls': ..., 'reg': ...}`` of ``head`` run on both feature sets."""
        raise NotImplementedError


@STRATEGIES.register_module()
class SingleStageStrategy(DistillStrategy):
    """Dense anchor heads (RetinaNet and other ``AnchorHead`` subclasses, mmrotate's rotated
    RetinaNet included: with oriented boxes set ``kd_reg=dict(type='KDRotatedGDLoss')``).

    Classification KD is weighted by the student assigner's label weights and normalised by its
    number of positives (both taken from the student's own ``get_targets`` call); regression KD
    compares boxes decoded from both predictions, weighted by the teacher's top class score.
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

    def decode(self, head: nn.Module, anchors: Tensor, deltas: Tensor) -> Tensor:
        """Boxes (M, 4) from anchors (M, 4) and deltas (M, D) with the head's coder."""
        return get_box_tensor(head.bbox_coder.decode(anchors, deltas))

    def label_weights(self, head: nn.Module, cls_t: list[Tensor], samples: SampleList,
                      sp: StudentPass) -> tuple[Tensor, Tensor | float]:
        """(N, A) label weights and the number of positives for the KD classification loss.

        Taken from the student's recorded targets when its anchors line up with the amplifier's;
        otherwise the amplifier head assigns the ground truth on its own grid.
        """
        num_anchors = sum(c.shape[-2] * c.shape[-1] for c in cls_t) * head.num_base_priors
        rec = sp.extras.get("targets")
        if rec is not None:
            label_weights_list, avg_factor = rec.output[1], rec.output[4]
            lw = torch.cat(label_weights_list, dim=1)
            if lw.shape[1] == num_anchors:
                return lw.float(), avg_factor
        metas = [s.metainfo for s in samples]
        gts = [s.gt_instances for s in samples]
        sizes = [c.shape[-2:] for c in cls_t]
        anchor_list, valid_list = head.get_anchors(sizes, metas, device=cls_t[0].device)
        targets = head.get_targets(anchor_list, valid_list, gts, metas)
        return torch.cat(targets[1], dim=1).float(), targets[4]

    def kd_losses(self, head, feats_s, feats_t, samples, sp, kd_cls, kd_reg):
        """Amplified classification (QFL-style BCE) and regression (GIoU) KD."""
        cls_s, reg_s = head(feats_s)
        with torch.no_grad():
            cls_t, reg_t = head(feats_t)
        num_classes = head.cls_out_channels
        box_dim = reg_s[0].shape[1] // head.num_base_priors
        logits_s, logits_t = self.flatten(cls_s, num_classes), self.flatten(cls_t, num_classes)
        deltas_s, deltas_t = self.flatten(reg_s, box_dim), self.flatten(reg_t, box_dim)
        lw, avg = self.label_weights(head, cls_t, samples, sp)
        loss_cls = kd_cls(logits_s.reshape(-1, num_classes), logits_t.reshape(-1, num_classes),
                          weight=lw.reshape(-1), avg_factor=safe_avg_factor(avg))

        sizes = [c.shape[-2:] for c in cls_t]
        priors = head.prior_generator.grid_priors(sizes, device=cls_t[0].device)
        # (N * A, D) anchors: a Tensor, or RotatedBoxes for mmrotate's rotated heads
        anchors = cat_boxes([cat_boxes(priors)] * logits_s.shape[0])
        boxes_s = self.decode(head, anchors, deltas_s.reshape(-1, box_dim))
        with torch.no_grad():
            boxes_t = self.decode(head, anchors, deltas_t.reshape(-1, box_dim))
            w = logits_t.reshape(-1, num_classes).sigmoid().max(dim=1).values * lw.reshape(-1)
        loss_reg = kd_reg(boxes_s, boxes_t, weight=w, avg_factor=safe_avg_factor(w.sum()))
        return {"cls": loss_cls, "reg": loss_reg}


@STRATEGIES.register_module()
class TwoStageStrategy(DistillStrategy):
    """Two-stage detectors with a standard RoI head (Faster R-CNN and kin).

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

    def kd_losses(self, head, feats_s, feats_t, samples, sp, kd_cls, kd_reg):
        """Amplified KL (classes) and weighted L1 (top-class deltas) on sampled RoIs."""
        rec = sp.extras.get("bbox_loss")
        if rec is None:
            raise RuntimeError("TwoStageStrategy: the student's roi_head.bbox_loss was not called")
        sampling_results = rec.args[-1][1] if len(rec.args[-1]) > 1 else rec.kwargs[-1][
            "sampling_results"]
        rois = bbox2roi([get_box_tensor(r.priors).detach() for r in sampling_results])
        out_s = head._bbox_forward(feats_s, rois)
        with torch.no_grad():
            out_t = head._bbox_forward(feats_t, rois)
        loss_cls = kd_cls(out_s["cls_score"], out_t["cls_score"])

        bbox_s, bbox_t = out_s["bbox_pred"], out_t["bbox_pred"]
        with torch.no_grad():
            probs = out_t["cls_score"].float().softmax(dim=1)[:, :-1]  # drop background
            conf, top = probs.max(dim=1)
        box_dim = head.bbox_head.bbox_coder.encode_size
        if bbox_s.shape[1] != box_dim:  # class-specific regression: take the teacher's top class
            idx = (top[:, None] * box_dim + torch.arange(box_dim, device=top.device)).long()
            bbox_s, bbox_t = bbox_s.gather(1, idx), bbox_t.gather(1, idx)
        loss_reg = kd_reg(bbox_s, bbox_t, weight=conf, avg_factor=safe_avg_factor(conf.sum()))
        return {"cls": loss_cls, "reg": loss_reg}


def build_strategy(student: BaseDetector, cfg: str | dict | None = None) -> DistillStrategy:
    """The strategy named by ``cfg``, or the one that fits ``student``'s structure."""
    if cfg is None:
        if getattr(student, "roi_head", None) is not None:
            cfg = "TwoStageStrategy"
        elif getattr(student, "bbox_head", None) is not None:
            cfg = "SingleStageStrategy"
        else:
            raise ValueError(
                f"SpectralDistiller: no distill strategy fits a {type(student).__name__} student "
                "(it has neither bbox_head nor roi_head); set distill_cfg.strategy"
            )
    if isinstance(cfg, str):
        cfg = {"type": cfg}
    return STRATEGIES.build(cfg)
