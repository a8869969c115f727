"""Dense heads beyond RetinaNet's (logits, deltas) pair: the published single-stage KD rule on
heads with point priors, distance coders and extra outputs.

:class:`DenseHeadStrategy` is the rule written once, with the three things that differ between
families as hooks: how a head's outputs decode to boxes on its priors (:meth:`~DenseHeadStrategy.
decode_outputs`), where its own target call keeps labels and label weights
(:meth:`~DenseHeadStrategy.recorded_targets`), and how the amplifier head assigns the ground truth
on its own grid when the student's targets do not serve (:meth:`~DenseHeadStrategy.own_targets`).
The families here are FCOS (:class:`FCOSStrategy`: points, distances, centerness) and RTMDet
(:class:`RTMDetStrategy`: points, distances scaled by the stride, the dynamic soft-label
assigner, shared or separate BN heads alike); ATSS and GFL are in :mod:`.atss_gfl`, RTMDet-R in
:mod:`.rotated_rtmdet`.
"""

from __future__ import annotations

from typing import Any

import torch
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor, nn

from ...losses.kd_losses import safe_avg_factor
from .base import STRATEGIES, KDContext
from .single_stage import SingleStageStrategy


def positives(labels: Tensor, num_classes: int) -> Tensor:
    """Number of positive priors: labels in ``[0, num_classes)`` (background is
    ``num_classes``), a 0-d tensor (no host sync)."""
    return ((labels >= 0) & (labels < num_classes)).sum()


def level_strides(head: nn.Module, sizes: list[torch.Size], device: torch.device) -> Tensor:
    """(A,) stride of every prior of one image, level by level (one prior per location)."""
    per = head.num_base_priors
    return torch.cat([torch.full((int(s[0] * s[1]) * per,), float(st[0]), device=device)
                      for s, st in zip(sizes, head.prior_generator.strides, strict=True)])


class DenseHeadStrategy(SingleStageStrategy):
    """The published single-stage KD rule with hooks for the head's outputs, decoding and targets.

    Classification: ``kd_cls`` on the (N * A, C) logits of the amplifier head run on both feature
    sets, weighted by the assigner's label weights and divided by its number of positives.
    Regression: ``kd_reg`` between the boxes decoded from both predictions on the same priors,
    weighted by the teacher's top sigmoid score over all priors, divided by the same number of
    positives. Outputs beyond the logits and the box branch (FCOS / ATSS centerness) enter no
    term: the published rule has these two.

    Subclasses name the heads they serve in ``head_types`` (class names, matched along the
    head's MRO by :func:`~ds2d2_mm.models.distillers.strategies.build_strategy`).
    """

    #: Positions of the labels and the label weights in the output of the head's
    #: ``get_targets`` (``None``: the head has no label weights, every prior weighs 1).
    targets_layout: tuple[int, int | None] = (1, 2)

    # -- hooks -----------------------------------------------------------------------------------
    def priors(self, head: nn.Module, sizes: list[torch.Size], device: torch.device) -> Tensor:
        """(A, P) priors of one image, level by level: points (x, y, stride_w, stride_h)."""
        return torch.cat(head.prior_generator.grid_priors(sizes, device=device, with_stride=True))

    def decode_outputs(self, head: nn.Module, outputs: tuple, priors: Tensor,
                       producer: Any) -> Tensor:
        """(N * A, D) boxes decoded from a head's per-level outputs on ``priors`` (A, P).

        ``producer`` is what made ``outputs`` (a head, in train or eval mode)."""
        raise NotImplementedError

    def recorded_targets(self, output: tuple, num_images: int,
                         head: nn.Module) -> tuple[Tensor, Tensor]:
        """(N, A) labels and label weights from the output of the head's ``get_targets``."""
        lab_at, lw_at = self.targets_layout
        labels = torch.cat(list(output[lab_at]), dim=1)
        weights = (torch.ones_like(labels, dtype=torch.float) if lw_at is None
                   else torch.cat(list(output[lw_at]), dim=1))
        return labels, weights

    def own_targets(self, head: nn.Module, outputs_t: tuple, sizes: list[torch.Size],
                    ctx: KDContext) -> tuple:
        """The output of the amplifier head's own ``get_targets`` on its grid (the teacher-side
        predictions ``outputs_t`` are there for assigners that read predictions)."""
        metas = [s.metainfo for s in ctx.samples]
        gts = [s.gt_instances for s in ctx.samples]
        anchors, valid = head.get_anchors(sizes, metas, device=outputs_t[0][0].device)
        return head.get_targets(anchors, valid, gts, metas)

    # -- the rule --------------------------------------------------------------------------------
    def targets(self, head: nn.Module, outputs_t: tuple, ctx: KDContext
                ) -> tuple[Tensor, Tensor]:
        """(N, A) label weights and the number of positives.

        From the student's recorded ``get_targets`` when it saw the amplifier's grid (same
        family, same levels); otherwise from the amplifier head's own assignment."""
        sizes = [c.shape[-2:] for c in outputs_t[0]]
        n = outputs_t[0][0].shape[0]
        num_priors = sum(int(s[0] * s[1]) for s in sizes) * head.num_base_priors
        rec = ctx.student_pass.extras.get("targets")
        if rec is not None and rec.output is not None:
            labels, weights = self.recorded_targets(rec.output, n, head)
            if labels.shape == (n, num_priors):
                return weights.float(), positives(labels, head.num_classes)
        labels, weights = self.recorded_targets(self.own_targets(head, outputs_t, sizes, ctx),
                                                n, head)
        return weights.float(), positives(labels, head.num_classes)

    def kd_losses(self, head: nn.Module, feats_s: list[Tensor], feats_t: list[Tensor],
                  ctx: KDContext, head_s: Any = None,
                  reg_only_where_labelled: bool = False) -> dict[str, Tensor]:
        """Amplified classification and regression KD (the published single-stage rule)."""
        producer = head if head_s is None else head_s
        out_s = producer(feats_s)
        with torch.no_grad():
            out_t = head(feats_t)
        c = head.cls_out_channels
        logits_s = self.flatten(out_s[0], c).reshape(-1, c)
        logits_t = self.flatten(out_t[0], c).reshape(-1, c)
        lw, num_pos = self.targets(head, out_t, ctx)
        avg = safe_avg_factor(num_pos)
        loss_cls = ctx.kd_cls(logits_s, logits_t, weight=lw.reshape(-1), avg_factor=avg)

        sizes = [m.shape[-2:] for m in out_t[0]]
        priors = self.priors(head, sizes, logits_t.device)
        boxes_s = self.decode_outputs(head, out_s, priors, producer).float()
        with torch.no_grad():
            boxes_t = self.decode_outputs(head, out_t, priors, head).float()
            top_score = logits_t.float().sigmoid().max(dim=1).values
            if reg_only_where_labelled:
                top_score = top_score * (lw.reshape(-1) > 0)
        loss_reg = ctx.kd_reg(boxes_s, boxes_t, weight=top_score, avg_factor=avg)
        return {"cls": loss_cls, "reg": loss_reg}


@STRATEGIES.register_module()
class FCOSStrategy(DenseHeadStrategy):
    """FCOS (mmdet's ``FCOSHead``): point priors (offset 0.5), ``(l, t, r, b)`` distances decoded
    by the head's ``DistancePointBBoxCoder``, a centerness branch that enters no KD term.

    Targets: ``FCOSHead.get_targets(points, gt)`` gives labels (per level, images concatenated)
    and no label weights: every point weighs 1, as in FCOS's own classification loss, over the
    number of positive points. With ``norm_on_bbox`` a head in train mode predicts distances in
    units of the stride (eval mode in pixels); both are decoded in pixels here.
    """

    head_types = ("FCOSHead",)
    targets_layout = (0, None)

    def decode_outputs(self, head, outputs, priors, producer) -> Tensor:
        """``distance2bbox`` of the points and the (N, A, 4) distances, in pixels."""
        n = outputs[0][0].shape[0]
        dist = self.flatten(outputs[1], 4)
        if getattr(head, "norm_on_bbox", False) and getattr(producer, "training", False):
            sizes = [m.shape[-2:] for m in outputs[0]]
            dist = dist * level_strides(head, sizes, dist.device)[None, :, None]
        points = priors[:, :2].repeat(n, 1)
        return get_box_tensor(head.bbox_coder.decode(points, dist.reshape(-1, 4)))

    def recorded_targets(self, output, num_images, head) -> tuple[Tensor, Tensor]:
        """FCOS's labels are per level with the images concatenated: (N * HW_l,) -> (N, A)."""
        labels = torch.cat([lv.reshape(num_images, -1) for lv in output[0]], dim=1)
        return labels, torch.ones_like(labels, dtype=torch.float)

    def own_targets(self, head, outputs_t, sizes, ctx) -> tuple:
        """``FCOSHead.get_targets`` on the amplifier's points."""
        ref = outputs_t[1][0]
        points = head.prior_generator.grid_priors(sizes, dtype=ref.dtype, device=ref.device)
        return head.get_targets(points, [s.gt_instances for s in ctx.samples])


@STRATEGIES.register_module()
class RTMDetStrategy(DenseHeadStrategy):
    """RTMDet (mmdet's ``RTMDetHead`` and ``RTMDetSepBNHead``, shared or separate convs and BN):
    point priors (offset 0), distances already scaled by the stride, decoded by the head's
    ``DistancePointBBoxCoder``.

    Targets: the dynamic soft-label assigner reads the predictions, so the student's recorded
    ``get_targets`` (labels at 1, label weights at 2) is used when it saw the amplifier's grid,
    and otherwise the amplifier head assigns on its own grid from the teacher-side predictions,
    as ``RTMDetHead.loss_by_feat`` does with its own.
    """

    head_types = ("RTMDetHead",)

    def box_branch(self, head: nn.Module, outputs: tuple) -> Tensor:
        """(N * A, 4) distances from the per-level box outputs."""
        return self.flatten(outputs[1], 4).reshape(-1, 4)

    #: The least distance (pixels) a decoded KD box keeps from its point (see decode_outputs).
    min_distance: float = 0.0

    def decode_outputs(self, head, outputs, priors, producer, clamp: bool = True) -> Tensor:
        """Boxes from the point priors and the distances, clamped at :attr:`min_distance` first
        (``clamp``): the RTMDet-tiny/s heads (``exp_on_reg=False``) predict distances linearly,
        and a negative one gives an inverted box, on which GIoU is not defined."""
        n = outputs[0][0].shape[0]
        points = priors[:, :2].repeat(n, 1)
        dist = self.box_branch(head, outputs)
        if clamp:
            dist = torch.cat([dist[:, :4].clamp(min=self.min_distance), dist[:, 4:]], dim=1)
        return get_box_tensor(head.bbox_coder.decode(points, dist))

    def own_targets(self, head, outputs_t, sizes, ctx) -> tuple:
        """``get_targets`` of the amplifier head with the teacher-side logits (N, A, C) and
        decoded boxes (N, A, D), on its own priors."""
        metas = [s.metainfo for s in ctx.samples]
        gts = [s.gt_instances for s in ctx.samples]
        n = outputs_t[0][0].shape[0]
        device = outputs_t[0][0].device
        anchors, valid = head.get_anchors(sizes, metas, device=device)
        logits = self.flatten(outputs_t[0], head.cls_out_channels)
        priors = self.priors(head, sizes, device)
        boxes = self.decode_outputs(head, outputs_t, priors, head, clamp=False)  # as the head's
        boxes = boxes.reshape(n, priors.shape[0], -1)
        return head.get_targets(logits, boxes, anchors, valid, gts, metas)
