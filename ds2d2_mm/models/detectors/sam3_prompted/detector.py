"""``Sam3PromptedDetector``: SAM3's full image model as an mmdet detector, prompted by class names.

    images (B, 3, S, S) ──┐
    class names (C texts) ┴─> Sam3Image (B * C prompts: every image asked for every class)
        -> per prompt: Q boxes, Q scores, a presence logit -> per image: the top detections
           over all its C * Q (class, query) pairs, labelled with the prompt's class

Training uses SAM3's own matcher and losses (:mod:`.loss`) on SAM3's target format
(:mod:`.prompts`); what trains is set by :mod:`.policy` (the last ViT blocks + the spectral
adapter + SAM3's head) and, stage by stage, by ``ProgressiveUnfreezeHook`` with the prefixes
of :data:`STAGE_PREFIXES`. The text encoder, geometry encoder, fusion encoder and decoder
layers are frozen and kept in eval mode, so SAM3's prompted abilities (text, points, boxes)
stay those of SAM3 apart from what the adapted ViT and head change.

Inputs are SAM3's: RGB normalised with mean 0.5 and std 0.5 on [0, 1] (mmdet's
``DetDataPreprocessor(mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True)``), S x S pixels
(``Resize(scale=(S, S), keep_ratio=False)``; smaller inputs are zero-padded at the bottom /
right). Boxes are normalised by S, so predictions map back to the original image through
mmdet's ``scale_factor``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import get_box_tensor
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from .build import build_sam3_image_model
from .compat import sam3_cpu_compat
from .loss import build_sam3_loss
from .policy import (
    ADAPTER_PREFIX,
    SAM3_HEAD_PREFIXES,
    TRUNK_PREFIX,
    apply_freeze_policy,
    insert_spectral_adapter,
    set_frozen_modes,
    trainable_summary,
)
from .prompts import build_find_batch

__all__ = ["STAGE_PREFIXES", "Sam3PromptedDetector", "resolve_classes"]

#: Parameter-name prefixes (in the detector, whose SAM3 model is ``sam3``) of the three stages
#: of ``ProgressiveUnfreezeHook``: ``vit`` (last ViT blocks + adapter), ``head`` (SAM3's
#: detection / segmentation head and presence token), and both.
STAGE_PREFIXES: dict[str, list[str]] = {
    "vit": [f"sam3.{TRUNK_PREFIX}", f"sam3.{ADAPTER_PREFIX}"],
    "head": [f"sam3.{p}" for p in SAM3_HEAD_PREFIXES],
}
STAGE_PREFIXES["both"] = STAGE_PREFIXES["vit"] + STAGE_PREFIXES["head"]

#: The outputs the losses and the predictions read (cast to fp32 before the loss).
_PRED_KEYS = ("pred_logits", "pred_boxes", "pred_boxes_xyxy", "presence_logit_dec", "pred_masks")
#: The loss terms logged (unweighted, final decoder layer) next to the weighted total.
_LOGGED_TERMS = ("loss_ce", "presence_loss", "loss_bbox", "loss_giou", "loss_mask", "loss_dice")


def _fp32(out: Any) -> Any:
    """The prediction tensors of a SAM3 output dict (and its aux outputs) in float32."""
    if isinstance(out, list):
        return [_fp32(o) for o in out]
    if not isinstance(out, dict):
        return out
    converted = {}
    for key, value in out.items():
        if key == "aux_outputs":
            value = _fp32(value)
        elif key.startswith(_PRED_KEYS) and torch.is_tensor(value) and value.is_floating_point():
            value = value.float()
        converted[key] = value
    return converted


def resolve_classes(classes: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """The class names in label order: ``classes`` itself, or, when it is a str, the
    ``METAINFO["classes"]`` of the dataset type it names (e.g. ``"DIORDataset"``).

    Raises:
        ValueError: a str that names no registered dataset type with ``METAINFO`` classes.
    """
    if classes is None:
        return None
    if not isinstance(classes, str):
        return tuple(classes)
    dataset = DATASETS.get(classes)
    names = (getattr(dataset, "METAINFO", None) or {}).get("classes")
    if not names:
        raise ValueError(
            f"model.classes={classes!r} names no registered dataset type with METAINFO "
            "classes: give the class names, or a dataset type such as 'DIORDataset'"
        )
    return tuple(names)


@MODELS.register_module()
class Sam3PromptedDetector(BaseDetector):
    """SAM3's image model + spectral adapter, asked for every class by name.

    Args:
        arch: SAM3 size (``"sam3"`` or ``"tiny"``, or a dict; see
            :data:`ds2d2_mm.models.detectors.sam3_prompted.build.SAM3_IMAGE_ARCHS`).
        checkpoint: Local ``sam3.pt`` (``None``: random init, or weights via ``load_from``).
        bpe_path: CLIP's BPE vocabulary (``None``: found, see :func:`resolve_bpe_path`).
        img_size: Input side S (default: the arch's, 1008 for SAM3).
        classes: The class names in label order (the dataset's metainfo ``classes``), or the
            name of a registered dataset type whose ``METAINFO`` classes they are (e.g.
            ``"DIORDataset"``; give the names when a config overrides the dataset's metainfo);
            ``None`` takes them from ``dataset_meta`` (set by mmdet's ``init_detector``).
        class_prompts: Text to ask for a class, by class name (e.g. ``{"storagetank": "storage
            tank"}``); other classes are asked by their name.
        num_trainable_blocks: N, the last ViT blocks that train.
        train_head: Whether SAM3's head and presence token may train.
        adapter_cfg: Keyword arguments of the spectral adapter (``None``: no adapter).
        with_mask_loss: Train the masks too (needs ``gt_instances.masks``); otherwise the
            segmentation head is skipped in the forward pass (boxes only).
        loss_cfg: Overrides of :data:`.loss.SAM3_LOSS_WEIGHTS`.
        max_per_img: Detections kept per image (over all classes).
        data_preprocessor: mmdet data preprocessor config.
        init_cfg: Unused (SAM3 is loaded, not initialised); kept for the mmengine signature.
    """

    def __init__(
        self,
        arch: str | dict = "sam3",
        checkpoint: str | None = None,
        bpe_path: str | None = None,
        img_size: int | None = None,
        classes: Sequence[str] | str | None = None,
        class_prompts: Mapping[str, str] | None = None,
        num_trainable_blocks: int = 6,
        train_head: bool = True,
        adapter_cfg: dict | None = None,
        with_mask_loss: bool = False,
        loss_cfg: dict | None = None,
        max_per_img: int = 100,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.classes = resolve_classes(classes)  # before SAM3 is built: a bad name fails fast
        self.sam3 = build_sam3_image_model(arch, bpe_path, checkpoint, img_size=img_size)
        self.img_size = self.sam3.arch_cfg["img_size"]
        adapter_cfg = dict(hidden_channels=128) if adapter_cfg is None else adapter_cfg
        if adapter_cfg:
            insert_spectral_adapter(self.sam3, **adapter_cfg)
        apply_freeze_policy(self.sam3, num_trainable_blocks, train_head)
        self.class_prompts = dict(class_prompts or {})
        self.with_mask_loss = with_mask_loss
        self.max_per_img = max_per_img
        self.criterion = build_sam3_loss(
            self.sam3.matcher,
            self.sam3.transformer.decoder.num_queries,
            with_mask_loss,
            **(loss_cfg or {}),
        )
        print_log(f"Sam3PromptedDetector: {trainable_summary(self.sam3)}", "current")

    @property
    def adapter(self) -> torch.nn.Module | None:
        """The spectral adapter inside SAM3's vision backbone (``None`` without one)."""
        return getattr(self.sam3.backbone.vision_backbone, "spectral_adapter", None)

    # ------------------------------------------------------------------ modes, prompts
    def train(self, mode: bool = True) -> Sam3PromptedDetector:
        """Set the mode; every SAM3 part without a trainable parameter stays in eval mode."""
        super().train(mode)
        if mode:
            set_frozen_modes(self.sam3)
        return self

    def init_weights(self) -> None:
        """Nothing to initialise: SAM3 is built (and loaded) whole, the adapter at identity."""

    def prompts(self) -> list[str]:
        """The C text prompts, in label order.

        Raises:
            RuntimeError: no class names (neither ``classes`` nor ``dataset_meta``).
        """
        classes = self.classes
        if classes is None:
            classes = (getattr(self, "dataset_meta", None) or {}).get("classes")
        if not classes:
            raise RuntimeError(
                "Sam3PromptedDetector needs the class names to prompt SAM3 with: set "
                "model.classes in the config to the dataset's metainfo classes"
            )
        return [self.class_prompts.get(c, c) for c in classes]

    # ------------------------------------------------------------------ running SAM3
    def _pad(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 3, S, S), zero-padded at the bottom / right."""
        height, width = inputs.shape[-2:]
        if height > self.img_size or width > self.img_size:
            raise ValueError(
                f"input of {height}x{width} px is larger than SAM3's img_size={self.img_size}: "
                f"resize to ({self.img_size}, {self.img_size}) in the pipeline "
                f"(Resize(scale=({self.img_size}, {self.img_size}), keep_ratio=False))"
            )
        return F.pad(inputs, (0, self.img_size - width, 0, self.img_size - height))

    @contextlib.contextmanager
    def _segmentation(self, enabled: bool) -> Iterator[None]:
        """Run SAM3 with or without its segmentation head (skipped when no mask is needed)."""
        head = self.sam3.segmentation_head
        if not enabled:
            self.sam3.segmentation_head = None
        try:
            yield
        finally:
            self.sam3.segmentation_head = head

    def _run(self, batch: Any, masks: bool) -> dict:
        """SAM3's forward on a find batch: the output dict of its (only) find stage."""
        with sam3_cpu_compat(batch.img_batch.device), self._segmentation(masks):
            outputs = self.sam3(batch)
        return outputs

    # ------------------------------------------------------------------ mmdet API
    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        """SAM3's vision features (after the adapter and neck), finest first: (B, d, h_i, w_i)."""
        with sam3_cpu_compat(batch_inputs.device):
            out = self.sam3.backbone.forward_image(self._pad(batch_inputs))
        return tuple(out["backbone_fpn"])

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList | None = None):
        """Raw outputs: (B * C, Q, 1) logits, (B * C, Q, 4) normalised xyxy boxes, (B * C, 1)
        presence logits, query b * C + c asking image b for class c."""
        batch = build_find_batch(self._pad(batch_inputs), self.prompts())
        out = self._run(batch, masks=False)[-1]
        return out["pred_logits"], out["pred_boxes_xyxy"], out["presence_logit_dec"]

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        """SAM3's loss on the class prompts of every image.

        Returns:
            ``loss_sam3`` (the weighted total of every term over every decoder layer and the
            one-to-many queries) and, for the log only, the unweighted final-layer terms as
            ``sam3_<term>``.
        """
        texts = self.prompts()
        instances = [s.gt_instances for s in batch_data_samples]
        boxes = [get_box_tensor(i.bboxes) for i in instances]
        labels = [i.labels for i in instances]
        masks = None
        if self.with_mask_loss:
            masks = [self._instance_masks(i, batch_inputs.device) for i in instances]
        batch = build_find_batch(self._pad(batch_inputs), texts, boxes, labels, masks)
        outputs = self._run(batch, masks=self.with_mask_loss)
        targets = [self.sam3.back_convert(t) for t in batch.find_targets]
        device_type = batch_inputs.device.type
        with torch.autocast(device_type, enabled=False), sam3_cpu_compat(batch_inputs.device):
            outputs = type(outputs)(
                [[_fp32(step) for step in stage] for stage in outputs.output],
                iter_mode=outputs.iter_mode,
                loss_stages=outputs.loss_stages,
            )
            terms = self.criterion(outputs, targets)
        losses = {"loss_sam3": terms["core_loss"]}
        for name in _LOGGED_TERMS:
            if name in terms and torch.is_tensor(terms[name]):
                losses[f"sam3_{name.replace('loss_', '').replace('_loss', '')}"] = (
                    terms[name].detach()
                )
        return losses

    def _instance_masks(self, instances: InstanceData, device: torch.device) -> Tensor:
        """(N, S, S) boolean masks of ``instances``, padded to the input size."""
        if "masks" not in instances:
            raise KeyError(
                "with_mask_loss=True needs instance masks: load them in the pipeline "
                "(LoadAnnotations(with_bbox=True, with_mask=True))"
            )
        masks = instances.masks.to_tensor(torch.bool, device)
        height, width = masks.shape[-2:]
        return F.pad(masks, (0, self.img_size - width, 0, self.img_size - height))

    def predict(
        self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True
    ) -> SampleList:
        """Detections per image: boxes (xyxy, original pixels when ``rescale``), scores, labels.

        The score of query q for class c is SAM3's: sigmoid(logit) * sigmoid(presence logit of
        the prompt c); the ``max_per_img`` best (class, query) pairs of the image are kept.
        """
        texts = self.prompts()
        num_classes = len(texts)
        batch = build_find_batch(self._pad(batch_inputs), texts)
        out = self._run(batch, masks=False)[-1]
        num_images = batch_inputs.shape[0]
        probs = out["pred_logits"].float().squeeze(-1).sigmoid()  # (B * C, Q)
        probs = probs * out["presence_logit_dec"].float().sigmoid()
        boxes = out["pred_boxes_xyxy"].float() * self.img_size  # (B * C, Q, 4) input pixels
        num_queries = probs.shape[1]
        probs = probs.view(num_images, num_classes * num_queries)
        boxes = boxes.view(num_images, num_classes * num_queries, 4)
        for b, sample in enumerate(batch_data_samples):
            k = min(self.max_per_img, probs.shape[1])
            scores, index = probs[b].topk(k)
            bboxes = boxes[b, index]
            if rescale:
                scale = bboxes.new_tensor(sample.metainfo["scale_factor"]).repeat(2)
                bboxes = bboxes / scale
                height, width = sample.metainfo["ori_shape"][:2]
                bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, width)
                bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, height)
            results = InstanceData()
            results.bboxes = bboxes
            results.scores = scores
            results.labels = torch.div(index, num_queries, rounding_mode="floor")
            sample.pred_instances = results
        return batch_data_samples
