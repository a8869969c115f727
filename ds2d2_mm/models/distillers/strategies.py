"""Per-family distillation strategies: what differs between detector families.

A strategy knows, for its family, (1) how to run the student's own task loss while keeping what
that call computed (FPN features, assigner targets, sampled RoIs), (2) which part of a detector is
an amplifier head, and (3) how to turn amplified predictions of student and teacher features into
KD losses. :class:`~ds2d2_mm.models.distillers.spectral_distiller.SpectralDistiller` holds one
strategy and stays the same class for every family. New families (e.g. rotated students) subclass a
strategy and override the few methods that differ.
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

from ...utils import record_call
from ...utils.errors import ConfigError
from ..losses.kd_losses import (
    ANY_VECTORS,
    HBOXES,
    RBOXES,
    SIGMOID_LOGITS,
    SOFTMAX_LOGITS,
    safe_avg_factor,
)

STRATEGIES = Registry("ds2d2 distill strategy", locations=["ds2d2_mm.models.distillers.strategies"])

#: What the losses of mmdet and mmrotate that make sense as KD losses compare, by registered name
#: (the project's own KD losses say it in their ``kd_input`` attribute).
KNOWN_LOSS_INPUTS: dict[str, str] = {
    **dict.fromkeys(("IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "EIoULoss", "SIoULoss",
                     "BoundedIoULoss"), HBOXES),
    **dict.fromkeys(("GDLoss", "RotatedIoULoss", "KFLoss", "H2RBoxConsistencyLoss"), RBOXES),
    **dict.fromkeys(("L1Loss", "SmoothL1Loss", "MSELoss", "BalancedL1Loss"), ANY_VECTORS),
    "KnowledgeDistillationKLDivLoss": SOFTMAX_LOGITS,
}
#: Name of the regression deltas of an RoI head, as a KD input.
DELTAS = "regression deltas"


def loss_input(loss: nn.Module) -> str | None:
    """What ``loss`` compares (a ``kd_input`` constant of :mod:`ds2d2_mm.models.losses.kd_losses`),
    or ``None`` when that is not known (a user's own loss without a ``kd_input`` attribute)."""
    return getattr(loss, "kd_input", None) or KNOWN_LOSS_INPUTS.get(type(loss).__name__)


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
        raise ConfigError(
            f"{type(self).__name__}: {type(detector).__name__} has none of {self.head_attrs}; "
            "student and teacher must be of the same detector family"
        )

    def num_classes(self, detector: BaseDetector) -> int | None:
        """Object classes that ``detector``'s amplifier head predicts."""
        head = self.amplifier_head(detector)
        return getattr(head, "num_classes", None)

    def box_type(self, detector: BaseDetector) -> str:
        """``'horizontal'`` or ``'rotated'``: the boxes ``detector`` predicts."""
        return "horizontal"

    def check_pair(self, student: BaseDetector, teacher: BaseDetector) -> None:
        """Refuse a teacher whose predictions cannot be compared with the student's.

        Raises:
            ConfigError: different families, class counts or box types, naming both values.
        """
        ns, nt = self.num_classes(student), self.num_classes(teacher)
        if ns is not None and nt is not None and ns != nt:
            raise ConfigError(
                f"the student predicts {ns} classes and the teacher {nt}: the amplified "
                "predictions cannot be compared; set the same num_classes in both configs")
        bs, bt = self.box_type(student), self.box_type(teacher)
        if bs != bt:
            raise ConfigError(f"the student predicts {bs} boxes and the teacher {bt} boxes: "
                              "use a teacher of the student's box type")

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
                  samples: SampleList, sp: StudentPass, kd_cls: nn.Module, kd_reg: nn.Module,
                  head_s: Any = None, **options: Any) -> dict[str, Tensor]:
        """KD losses ``{'cls': ..., 'reg': ...}`` of ``head`` run on both feature sets.

        ``head_s`` (default ``head``) makes the student's predictions instead, e.g. the student's
        own head (prediction mimicking) or CrossKD's cross head; ``head`` makes the teacher's.
        """
        raise NotImplementedError

    def default_kd_losses(self, student: BaseDetector) -> dict[str, dict]:
        """The published ``kd_cls`` and ``kd_reg`` configs for ``student``'s family."""
        raise NotImplementedError

    def kd_inputs(self, student: BaseDetector) -> dict[str, str]:
        """What this strategy passes to ``kd_cls`` and ``kd_reg`` for ``student``."""
        raise NotImplementedError

    def check_kd_losses(self, student: BaseDetector, losses: dict[str, nn.Module]) -> None:
        """Refuse a KD loss that does not fit the predictions it would receive.

        Args:
            student: The built student.
            losses: ``{'kd_cls': module, 'kd_reg': module}``.

        Raises:
            ConfigError: naming ``distill_cfg.<key>``, the loss, what it compares and what this
                strategy gives it.
        """
        given = self.kd_inputs(student)
        for key, loss in losses.items():
            wants = loss_input(loss)
            if wants is None or wants == given[key]:
                continue
            if wants == ANY_VECTORS and given[key] in (HBOXES, RBOXES, DELTAS):
                continue
            default = self.default_kd_losses(student)[key]["type"].split(".")[-1]
            raise ConfigError(
                f"distill_cfg.{key}: {type(loss).__name__} compares {wants}, but "
                f"{type(self).__name__} gives it {given[key]} of the "
                f"{type(student).__name__} student; use {default} (published) or another loss "
                f"on {given[key]}")


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

    def kd_losses(self, head, feats_s, feats_t, samples, sp, kd_cls, kd_reg, head_s=None,
                  reg_only_where_labelled: bool = False):
        """Amplified classification and regression KD (published normalisation).

        Classification: ``kd_cls`` on the (A, C) logits, weighted by the assigner's label
        weights, divided by its number of positive anchors. Regression: ``kd_reg`` between the
        boxes decoded from both predictions on the same anchors, weighted by the teacher's top
        sigmoid score over all anchors (no label-weight factor; with
        ``reg_only_where_labelled``, as CrossKD, zero where the label weight is zero), divided by
        the same number of positives. The student's predictions come from ``head_s(feats_s)``
        (default ``head``), the teacher's from ``head(feats_t)``.
        """
        cls_s, reg_s = (head if head_s is None else head_s)(feats_s)
        with torch.no_grad():
            cls_t, reg_t = head(feats_t)
        num_classes = head.cls_out_channels
        box_dim = reg_s[0].shape[1] // head.num_base_priors
        logits_s, logits_t = self.flatten(cls_s, num_classes), self.flatten(cls_t, num_classes)
        deltas_s, deltas_t = self.flatten(reg_s, box_dim), self.flatten(reg_t, box_dim)
        lw, num_pos = self.label_weights(head, cls_t, samples, sp)
        avg = safe_avg_factor(num_pos)
        loss_cls = kd_cls(logits_s.reshape(-1, num_classes), logits_t.reshape(-1, num_classes),
                          weight=lw.reshape(-1), avg_factor=avg)

        sizes = [c.shape[-2:] for c in cls_t]
        priors = head.prior_generator.grid_priors(sizes, device=cls_t[0].device)
        # (N * A, D) anchors: a Tensor, or RotatedBoxes for mmrotate's rotated heads
        anchors = cat_boxes([cat_boxes(priors)] * logits_s.shape[0])
        boxes_s = self.decode(head, anchors, deltas_s.reshape(-1, box_dim)).float()
        with torch.no_grad():
            boxes_t = self.decode(head, anchors, deltas_t.reshape(-1, box_dim)).float()
            top_score = logits_t.reshape(-1, num_classes).float().sigmoid().max(dim=1).values
            if reg_only_where_labelled:
                top_score = top_score * (lw.reshape(-1) > 0)
        loss_reg = kd_reg(boxes_s, boxes_t, weight=top_score, avg_factor=avg)
        return {"cls": loss_cls, "reg": loss_reg}


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

    def kd_losses(self, head, feats_s, feats_t, samples, sp, kd_cls, kd_reg, head_s=None):
        """Amplified KD on the RoIs sampled from the student's proposals (published).

        Classification: ``kd_cls`` on the (R, C + 1) logits (KL with temperature, summed over
        RoIs). Regression: ``kd_reg`` between the deltas of the teacher's top foreground class
        (softmax at T = 1 over all logits, background dropped) of student and teacher, weighted
        per RoI by that class's probability ``conf`` and divided by ``D * sum(conf)`` (D delta
        components: 4, or 5 for oriented RoIs). The student's outputs come from ``head_s``
        (default ``head``), an RoI head too.
        """
        rois = self.sampled_rois(sp)
        out_s = (head if head_s is None else head_s)._bbox_forward(feats_s, rois)
        with torch.no_grad():
            out_t = head._bbox_forward(feats_t, rois)
        loss_cls = kd_cls(out_s["cls_score"], out_t["cls_score"])

        bbox_s, bbox_t = out_s["bbox_pred"].float(), out_t["bbox_pred"].float()
        with torch.no_grad():
            probs = out_t["cls_score"].float().softmax(dim=1)[:, :-1]  # drop background
            conf, top = probs.max(dim=1)
        box_dim = head.bbox_head.bbox_coder.encode_size
        if bbox_s.shape[1] != box_dim:  # class-specific regression: take the teacher's top class
            idx = (top[:, None] * box_dim + torch.arange(box_dim, device=top.device)).long()
            bbox_s, bbox_t = bbox_s.gather(1, idx), bbox_t.gather(1, idx)
        weight = conf[:, None].expand_as(bbox_s)
        loss_reg = kd_reg(bbox_s, bbox_t, weight=weight, avg_factor=conf.sum() * box_dim)
        return {"cls": loss_cls, "reg": loss_reg}


def build_strategy(student: BaseDetector, cfg: str | dict | None = None) -> DistillStrategy:
    """The strategy named by ``cfg``, or the one that fits ``student``'s structure."""
    if cfg is None:
        if getattr(student, "roi_head", None) is not None:
            cfg = "TwoStageStrategy"
        elif getattr(student, "bbox_head", None) is not None:
            cfg = "SingleStageStrategy"
        else:
            raise ConfigError(
                f"SpectralDistiller: no distill strategy fits a {type(student).__name__} student "
                "(it has neither bbox_head nor roi_head); set distill_cfg.strategy"
            )
    if isinstance(cfg, str):
        cfg = {"type": cfg}
    return STRATEGIES.build(cfg)
