"""mmdet samples <-> SAM3's prompted batches: one text prompt per (image, class) pair.

SAM3 answers one prompt at a time: for a text prompt it predicts ``num_queries`` boxes (and
masks) with a score each, and a presence logit saying whether the prompted concept is in the
image at all. Detection over C classes therefore asks every image every class name:

    B images x C class prompts -> Q = B * C find queries, query q = b * C + c
        img_ids[q] = b, text_ids[q] = c          (the C texts are encoded once per batch)

Targets (``sam3.model.data_misc.BatchedFindTarget``) follow SAM3's format: for query (b, c)
the boxes of image b labelled c, normalised cxcywh (x and y divided by the input's width and
height); a class without an instance in the image is a negative prompt (``num_boxes = 0``),
which trains the presence token towards "absent". Every prompt is exhaustive (all instances of
the class in the image are annotated), so unmatched queries are negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ...backbones.sam3_import import import_sam3

__all__ = ["build_find_batch", "prompt_index", "xyxy_to_norm_cxcywh"]

#: Width of the (empty) point-prompt embeddings SAM3's collator pads to.
_POINT_EMBED_DIM = 257


def prompt_index(num_images: int, num_classes: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(img_ids, text_ids)``, each (B * C,): query ``b * C + c`` asks image b for class c."""
    img_ids = torch.arange(num_images, device=device).repeat_interleave(num_classes)
    text_ids = torch.arange(num_classes, device=device).repeat(num_images)
    return img_ids, text_ids


def xyxy_to_norm_cxcywh(boxes: Tensor, width: float, height: float) -> Tensor:
    """(N, 4) xyxy pixels -> (N, 4) cxcywh normalised by the image's ``width`` / ``height``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    out = torch.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
                       (x2 - x1) / width, (y2 - y1) / height], dim=-1)  # fmt: skip
    return out.clamp(0.0, 1.0)


def _find_stage(num_images: int, num_classes: int, device: torch.device) -> Any:
    """A ``FindStage`` with the (image, class) text queries and no geometric prompt."""
    data_misc = import_sam3("sam3.model.data_misc")
    img_ids, text_ids = prompt_index(num_images, num_classes, device)
    q = img_ids.numel()
    return data_misc.FindStage(
        img_ids=img_ids,
        text_ids=text_ids,
        input_boxes=torch.zeros(0, q, 4, device=device),
        input_boxes_mask=torch.zeros(q, 0, dtype=torch.bool, device=device),
        input_boxes_label=torch.zeros(0, q, dtype=torch.long, device=device),
        input_points=torch.zeros(q, 0, _POINT_EMBED_DIM, device=device),
        input_points_mask=torch.zeros(q, 0, dtype=torch.bool, device=device),
        object_ids=None,
    )


def _find_target(
    gt_boxes: Sequence[Tensor],
    gt_labels: Sequence[Tensor],
    gt_masks: Sequence[Tensor] | None,
    img_hw: tuple[int, int],
    num_classes: int,
    device: torch.device,
) -> Any:
    """A ``BatchedFindTarget`` for the (image, class) queries of :func:`prompt_index`."""
    data_misc = import_sam3("sam3.model.data_misc")
    collator = import_sam3("sam3.train.data.collator")
    height, width = img_hw
    boxes, counts, object_ids, masks = [], [], [], []
    for b, (bboxes, labels) in enumerate(zip(gt_boxes, gt_labels)):
        norm = xyxy_to_norm_cxcywh(bboxes.to(device).float(), width, height)
        labels = labels.to(device)
        for c in range(num_classes):
            keep = (labels == c).nonzero().squeeze(1)
            boxes.append(norm[keep])
            counts.append(keep.numel())
            object_ids.append(keep)
            if gt_masks is not None:
                masks.append(gt_masks[b][keep.cpu()].to(device))
    num_boxes = torch.tensor(counts, dtype=torch.long, device=device)
    packed = torch.cat(boxes) if boxes else torch.zeros(0, 4, device=device)
    ids = torch.cat(object_ids) if object_ids else torch.zeros(0, dtype=torch.long, device=device)
    segments = valid = None
    if gt_masks is not None:
        segments = torch.cat(masks).bool() if masks else None
        valid = torch.ones(packed.shape[0], dtype=torch.bool, device=device)
    return data_misc.BatchedFindTarget(
        num_boxes=num_boxes,
        boxes=packed,
        boxes_padded=collator.packed_to_padded_naive(packed, num_boxes),
        repeated_boxes=torch.zeros(0, 4, device=device),
        segments=segments,
        semantic_segments=None,
        is_valid_segment=valid,
        is_exhaustive=torch.ones(num_boxes.numel(), dtype=torch.bool, device=device),
        object_ids=ids,
        object_ids_padded=collator.packed_to_padded_naive(ids, num_boxes, fill_value=-1),
    )


def build_find_batch(
    images: Tensor,
    texts: Sequence[str],
    gt_boxes: Sequence[Tensor] | None = None,
    gt_labels: Sequence[Tensor] | None = None,
    gt_masks: Sequence[Tensor] | None = None,
) -> Any:
    """SAM3's ``BatchedDatapoint`` asking every image of ``images`` every text of ``texts``.

    Args:
        images: (B, 3, H, W) normalised images, H and W the model's input size.
        texts: The C class prompts, in label order.
        gt_boxes: Per image (N_b, 4) xyxy boxes in pixels of ``images``; ``None`` for inference.
        gt_labels: Per image (N_b,) labels in ``[0, C)``.
        gt_masks: Per image (N_b, H, W) boolean instance masks, or ``None`` (boxes only).

    Returns:
        ``sam3.model.data_misc.BatchedDatapoint`` with one find stage of B * C queries and, when
        ground truth is given, its ``BatchedFindTarget`` (else ``find_targets=[None]``).
    """
    data_misc = import_sam3("sam3.model.data_misc")
    num_images, num_classes = images.shape[0], len(texts)
    stage = _find_stage(num_images, num_classes, images.device)
    target = None
    if gt_boxes is not None:
        if gt_labels is None:
            raise ValueError("build_find_batch: gt_boxes given without gt_labels")
        target = _find_target(
            gt_boxes, gt_labels, gt_masks, tuple(images.shape[-2:]), num_classes, images.device
        )
    return data_misc.BatchedDatapoint(
        img_batch=images,
        find_text_batch=list(texts),
        find_inputs=[stage],
        find_targets=[target],
        find_metadatas=[None],
    )
