"""SAM3's own training loss, built with the weights of SAM3's fine-tuning recipe.

The classes come from the sam3 package (``sam3.train.loss``, ``sam3.train.matcher``); the wheel
ships no training configs, so the weights are those of the upstream repository's fine-tuning
config ``sam3/train/configs/roboflow_v100/roboflow_v100_full_ft_100_images.yaml`` (the mask
terms from its commented segmentation variant):

    matcher (one-to-one, the model's own): BinaryHungarianMatcherV2, focal, cost class 2,
        box L1 5, GIoU 2, alpha 0.25, gamma 2                   (model_builder builds it)
    one-to-many (DAC queries): BinaryOneToManyMatcher(alpha 0.3, threshold 0.4, top-k 4),
        weight 2, the one-to-one matcher on auxiliary layers
    Boxes: loss_bbox 5, loss_giou 2
    IABCEMdetr: loss_ce 20, presence_loss 20, pos_weight 10, alpha 0.25, gamma 2,
        use_presence, no weak loss, pad_n_queries = the decoder's queries (200 for SAM3)
    Masks (only with instance masks): loss_mask 200, loss_dice 10, focal alpha 0.25 gamma 2,
        final layer only
    scale_by_find_batch_size: True (the loss is scaled by sqrt(number of prompts))

Normalisation is over the number of ground-truth boxes, averaged over GPUs ("global") when
torch.distributed is initialised and over this process's boxes ("local") otherwise.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from torch import nn

from ...backbones.sam3_import import import_sam3

__all__ = ["SAM3_LOSS_WEIGHTS", "build_sam3_loss"]

#: Loss weights of SAM3's fine-tuning recipe (see the module docstring for the source).
SAM3_LOSS_WEIGHTS: dict[str, Any] = dict(
    loss_bbox=5.0,
    loss_giou=2.0,
    loss_ce=20.0,
    presence_loss=20.0,
    pos_weight=10.0,
    ce_alpha=0.25,
    ce_gamma=2,
    loss_mask=200.0,
    loss_dice=10.0,
    mask_focal_alpha=0.25,
    mask_focal_gamma=2.0,
    o2m_weight=2.0,
    o2m_alpha=0.3,
    o2m_threshold=0.4,
    o2m_topk=4,
    scale_by_find_batch_size=True,
)


def build_sam3_loss(
    matcher: nn.Module, num_queries: int, with_masks: bool, **overrides: Any
) -> nn.Module:
    """``sam3.train.loss.sam3_loss.Sam3LossWrapper`` with :data:`SAM3_LOSS_WEIGHTS`.

    Args:
        matcher: The one-to-one matcher (``Sam3Image.matcher``, which also matches in forward).
        num_queries: The decoder's one-to-one queries (``pad_n_queries`` of the score loss).
        with_masks: Add SAM3's mask loss (focal + dice on the matched queries' masks).
        **overrides: Keys of :data:`SAM3_LOSS_WEIGHTS` to change.

    Raises:
        KeyError: an override that is not a key of :data:`SAM3_LOSS_WEIGHTS`.
    """
    unknown = set(overrides) - set(SAM3_LOSS_WEIGHTS)
    if unknown:
        raise KeyError(
            f"unknown SAM3 loss settings {sorted(unknown)}; known: {sorted(SAM3_LOSS_WEIGHTS)}"
        )
    w = {**SAM3_LOSS_WEIGHTS, **overrides}
    loss_fns = import_sam3("sam3.train.loss.loss_fns")
    wrapper_mod = import_sam3("sam3.train.loss.sam3_loss")
    matcher_mod = import_sam3("sam3.train.matcher")
    terms = [
        loss_fns.Boxes(weight_dict=dict(loss_bbox=w["loss_bbox"], loss_giou=w["loss_giou"])),
        loss_fns.IABCEMdetr(
            weak_loss=False,
            weight_dict=dict(loss_ce=w["loss_ce"], presence_loss=w["presence_loss"]),
            pos_weight=w["pos_weight"],
            alpha=w["ce_alpha"],
            gamma=w["ce_gamma"],
            use_presence=True,
            pos_focal=False,
            pad_n_queries=num_queries,
            pad_scale_pos=1.0,
        ),
    ]
    if with_masks:
        terms.append(
            loss_fns.Masks(
                focal_alpha=w["mask_focal_alpha"],
                focal_gamma=w["mask_focal_gamma"],
                weight_dict=dict(loss_mask=w["loss_mask"], loss_dice=w["loss_dice"]),
                compute_aux=False,
            )
        )
    return wrapper_mod.Sam3LossWrapper(
        loss_fns_find=terms,
        normalization="global" if dist.is_available() and dist.is_initialized() else "local",
        matcher=matcher,
        o2m_matcher=matcher_mod.BinaryOneToManyMatcher(
            alpha=w["o2m_alpha"], threshold=w["o2m_threshold"], topk=w["o2m_topk"]
        ),
        o2m_weight=w["o2m_weight"],
        use_o2m_matcher_on_o2m_aux=False,
        loss_fn_semantic_seg=None,
        scale_by_find_batch_size=w["scale_by_find_batch_size"],
    )
