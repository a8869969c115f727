"""Retention measured on SAM3's own outputs: does the fine-tuned model still answer prompts as
the original does?

Both full SAM3 image models (``sam3.model.sam3_image.Sam3Image``) answer the same prompts on the
same images through sam3's own inference API, and their answers are compared per prompt kind:

==================  ====================================================  ==================
kind                SAM3 path (sam3 0.1.4)                                agreement
==================  ====================================================  ==================
``text``            ``Sam3Processor.set_text_prompt``: every instance of   box AP vs original
                    the named concept (promptable concept segmentation)
``box_exemplar``    ``Sam3Processor.add_geometric_prompt`` with a          box AP vs original
                    positive box and no text: the box is an EXEMPLAR,
                    SAM3 finds every instance of what it shows
``box_instance``    ``Sam3Image.predict_inst(box=...)``: the SAM1-style    mean mask IoU
                    interactive predictor, one mask for the boxed
                    instance (needs ``enable_inst_interactivity``)
``point_instance``  ``Sam3Image.predict_inst(point_coords=...)``: one      mean mask IoU
                    mask for the clicked instance
==================  ====================================================  ==================

Box AP (:func:`ds2d2_mm.apis.sam3.agreement.box_ap_against_reference`): the original's detections
scoring at least ``ref_score_thr`` are the ground truth, the fine-tuned model's detections
scoring at least ``min_score`` are scored against them with pycocotools (AP over IoU 0.50:0.95;
AP50 reported too). Mask IoU: the instance predictor's best mask (by its own predicted IoU; a
single click asks for 3 candidate masks, as SAM recommends for ambiguous prompts, anything else
for one) of each model, at the original image size. A kind passes when its agreement reaches the
threshold (0.95); a kind without prompts, without an instance predictor, or (for AP) without any
reference object is reported as not measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ...models.detectors.sam3_prompted.compat import sam3_inference_on
from .agreement import Detections, box_ap_against_reference, mask_iou
from .retention_prompts import PromptSet, check_prompts_fit_images

__all__ = [
    "DEFAULT_MIN_SCORE",
    "DEFAULT_REF_SCORE_THR",
    "DEFAULT_THRESHOLD",
    "PROMPT_KINDS",
    "KindResult",
    "OutputRetentionReport",
    "Sam3PromptRunner",
    "compare_sam3_outputs",
    "model_resolution",
    "sam3_inference_on",
]

#: Pass mark of every prompt kind (AP or mean mask IoU).
DEFAULT_THRESHOLD = 0.95
#: The original's detections at or above this score are the reference (Sam3Processor's default
#: confidence threshold).
DEFAULT_REF_SCORE_THR = 0.5
#: The fine-tuned model's detections at or above this score are scored.
DEFAULT_MIN_SCORE = 0.05

#: Prompt kind -> (metric name, how SAM3 answers it).
PROMPT_KINDS: dict[str, tuple[str, str]] = {
    "text": ("box AP", "Sam3Processor.set_text_prompt (concept: all instances)"),
    "box_exemplar": ("box AP", "Sam3Processor.add_geometric_prompt (box as exemplar)"),
    "box_instance": ("mask IoU", "Sam3Image.predict_inst(box) (SAM1-style, one instance)"),
    "point_instance": ("mask IoU", "Sam3Image.predict_inst(points) (SAM1-style, one instance)"),
}


def model_resolution(model: nn.Module) -> int:
    """The square input size (pixels) a ``Sam3Image`` runs at, read from its ViT trunk."""
    trunk = model.backbone.vision_backbone.trunk
    patch = trunk.patch_embed.proj.kernel_size[0]
    return int(trunk.blocks[trunk.full_attn_ids[-1]].attn.input_size[0] * patch)


class Sam3PromptRunner:
    """Answers prompts with one ``Sam3Image`` through sam3's ``Sam3Processor`` and ``predict_inst``.

    Args:
        model: A ``sam3.model.sam3_image.Sam3Image`` in eval mode.
        device: Where the model lives.
        min_score: Detections scoring below this are dropped (``Sam3Processor``'s
            ``confidence_threshold``).
    """

    def __init__(self, model: nn.Module, device: torch.device | str, min_score: float) -> None:
        from ...models.backbones.sam3_import import import_sam3

        processor_module = import_sam3("sam3.model.sam3_image_processor")
        self.model = model
        self.device = torch.device(device)
        self.processor = processor_module.Sam3Processor(
            model, resolution=model_resolution(model), device=str(self.device),
            confidence_threshold=min_score,
        )

    @property
    def has_instance_predictor(self) -> bool:
        """Whether the model was built with SAM3's interactive instance predictor."""
        return getattr(self.model, "inst_interactive_predictor", None) is not None

    def set_image(self, image: Any) -> dict[str, Any]:
        """Run the image encoder once on a PIL RGB ``image``; returns the processor's state."""
        return self.processor.set_image(image)

    def _detections(self, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        boxes = state["boxes"].float().cpu().numpy().reshape(-1, 4)
        scores = state["scores"].float().cpu().numpy().reshape(-1)
        return boxes, scores

    def text(self, state: dict[str, Any], prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """All instances of the concept ``prompt``: (K, 4) xyxy pixel boxes and (K,) scores."""
        self.processor.reset_all_prompts(state)
        return self._detections(self.processor.set_text_prompt(prompt, state))

    def exemplar(
        self, state: dict[str, Any], box: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """All instances like the one in ``box`` (xyxy pixels): (K, 4) boxes and (K,) scores."""
        self.processor.reset_all_prompts(state)
        height, width = state["original_height"], state["original_width"]
        x1, y1, x2, y2 = box
        cxcywh = [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
                  (y2 - y1) / height]
        return self._detections(self.processor.add_geometric_prompt(cxcywh, True, state))

    @torch.inference_mode()
    def instance(
        self,
        state: dict[str, Any],
        box: Sequence[float] | None = None,
        points: Sequence[Sequence[float]] | None = None,
    ) -> np.ndarray:
        """The (H, W) boolean mask of one instance, prompted by a box (xyxy pixels) or by clicks
        (``[x, y, label]`` pixels).

        A single click asks for SAM's three candidate masks and keeps the one with the highest
        predicted IoU; any other prompt asks for one mask.
        """
        kwargs: dict[str, Any] = {"normalize_coords": True}
        if box is not None:
            kwargs["box"] = np.asarray(box, dtype=np.float32)
        if points is not None:
            clicks = np.asarray(points, dtype=np.float32).reshape(-1, 3)
            kwargs["point_coords"] = clicks[:, :2]
            kwargs["point_labels"] = clicks[:, 2].astype(np.int32)
        multimask = box is None and points is not None and len(points) == 1
        masks, ious, _ = self.model.predict_inst(state, multimask_output=multimask, **kwargs)
        return np.asarray(masks[int(np.argmax(ious))] > 0)


@dataclass
class KindResult:
    """The agreement of one prompt kind.

    Attributes:
        kind: A key of :data:`PROMPT_KINDS`.
        num_prompts: Prompts answered by both models (a text prompt counts once per image).
        value: AP or mean mask IoU; ``None`` when not measured.
        note: Why it was not measured, or extra numbers (AP50, reference objects).
        details: Per-query / per-prompt values for the JSON report.
    """

    kind: str
    num_prompts: int = 0
    value: float | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        """``"box AP"`` or ``"mask IoU"``."""
        return PROMPT_KINDS[self.kind][0]

    def verdict(self, threshold: float) -> str:
        """``"PASS"``, ``"FAIL"`` or ``"n/a"`` (not measured)."""
        if self.value is None:
            return "n/a"
        return "PASS" if self.value >= threshold else "FAIL"


@dataclass
class OutputRetentionReport:
    """Agreement of a fine-tuned SAM3 model with the original, per prompt kind."""

    kinds: dict[str, KindResult]
    images: list[str]
    threshold: float = DEFAULT_THRESHOLD
    ref_score_thr: float = DEFAULT_REF_SCORE_THR
    min_score: float = DEFAULT_MIN_SCORE
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """At least one kind measured, and every measured kind reaches the threshold."""
        measured = [k for k in self.kinds.values() if k.value is not None]
        return bool(measured) and all(k.value >= self.threshold for k in measured)

    def table(self) -> str:
        """A text table: one row per prompt kind, then the overall verdict."""
        header = f"{'prompt kind':<15} {'SAM3 path':<58} {'metric':<9} {'prompts':>7} " \
                 f"{'value':>7}  verdict"
        lines = [header, "-" * len(header)]
        for result in self.kinds.values():
            value = "-" if result.value is None else f"{result.value:.4f}"
            lines.append(
                f"{result.kind:<15} {PROMPT_KINDS[result.kind][1]:<58} {result.metric:<9} "
                f"{result.num_prompts:>7} {value:>7}  {result.verdict(self.threshold)}"
                + (f"  ({result.note})" if result.note else "")
            )
        lines.append("-" * len(header))
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: every measured prompt kind vs threshold {self.threshold} over "
            f"{len(self.images)} images (reference: original's detections with score >= "
            f"{self.ref_score_thr}; fine-tuned detections scored from {self.min_score})"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """Everything in the report, JSON-serialisable."""
        return {
            "passed": self.passed,
            "threshold": self.threshold,
            "ref_score_thr": self.ref_score_thr,
            "min_score": self.min_score,
            "images": self.images,
            "inputs": self.inputs,
            "kinds": {
                name: {
                    "sam3_path": PROMPT_KINDS[name][1],
                    "metric": result.metric,
                    "num_prompts": result.num_prompts,
                    "value": result.value,
                    "verdict": result.verdict(self.threshold),
                    "note": result.note,
                    **result.details,
                }
                for name, result in self.kinds.items()
            },
        }


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _ap_result(
    kind: str, reference: list[Detections], predicted: list[Detections], labels: list[str],
    ref_score_thr: float,
) -> KindResult:
    result = KindResult(kind, num_prompts=len(predicted))
    if not predicted:
        result.note = "no prompts"
        return result
    agreement = box_ap_against_reference(reference, predicted, ref_score_thr, len(labels))
    result.value = agreement.ap
    result.details = {
        "ap50": agreement.ap50,
        "num_reference": agreement.num_reference,
        "num_predicted": agreement.num_predicted,
        "per_query": {labels[q]: ap for q, ap in agreement.per_query.items()},
    }
    if agreement.ap is None:
        result.note = f"the original found no object with score >= {ref_score_thr}"
    else:
        result.note = f"AP50 {agreement.ap50:.4f}, {agreement.num_reference} reference objects"
    return result


def _iou_result(
    kind: str, ious: dict[str, float], available: bool, has_prompts: bool
) -> KindResult:
    result = KindResult(kind, num_prompts=len(ious))
    if not has_prompts:
        result.note = "no prompts"
    elif not available:
        result.note = "no instance predictor (build with enable_inst_interactivity=True)"
    else:
        result.value = _mean(list(ious.values()))
        result.note = f"min {min(ious.values()):.4f}"
        result.details = {"per_prompt": ious}
    return result


@torch.no_grad()
def compare_sam3_outputs(
    finetuned: Sam3PromptRunner,
    original: Sam3PromptRunner,
    images: Iterable[tuple[str, Any]],
    prompts: PromptSet,
    threshold: float = DEFAULT_THRESHOLD,
    ref_score_thr: float = DEFAULT_REF_SCORE_THR,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> OutputRetentionReport:
    """Answer ``prompts`` on ``images`` with both models and measure their agreement per kind.

    Args:
        finetuned, original: Runners of the two models (same input resolution).
        images: ``(name, PIL RGB image)`` pairs; box / point prompts are looked up by ``name``.
        prompts: Text prompts (every image) and per-image box / point prompts.
        threshold: Pass mark of each kind.
        ref_score_thr: The original's detections at or above this score are the reference.
        progress: Wraps the image iterable (e.g. ``tqdm``); ``None``: no progress bar.

    Raises:
        PromptError: a box or point prompt lies outside its image.
    """
    text_ref: list[Detections] = []
    text_pred: list[Detections] = []
    ex_ref: list[Detections] = []
    ex_pred: list[Detections] = []
    ex_labels: list[str] = []
    box_ious: dict[str, float] = {}
    point_ious: dict[str, float] = {}
    instances = finetuned.has_instance_predictor and original.has_instance_predictor
    names: list[str] = []
    for name, image in (progress or (lambda x: x))(images):
        names.append(name)
        width, height = image.size
        check_prompts_fit_images(
            PromptSet(boxes={name: prompts.boxes.get(name, [])},
                      points={name: prompts.points.get(name, [])}),
            {name: (width, height)}, "prompts",
        )
        states = original.set_image(image), finetuned.set_image(image)
        for query, prompt in enumerate(prompts.text):
            for runner, state, out in ((original, states[0], text_ref),
                                       (finetuned, states[1], text_pred)):
                boxes, scores = runner.text(state, prompt)
                out.append(Detections(name, query, boxes, scores, height, width))
        for index, box in enumerate(prompts.boxes.get(name, [])):
            label = f"{name}#box{index}"
            query = len(ex_labels)
            ex_labels.append(label)
            for runner, state, out in ((original, states[0], ex_ref),
                                       (finetuned, states[1], ex_pred)):
                boxes, scores = runner.exemplar(state, box)
                out.append(Detections(name, query, boxes, scores, height, width))
            if instances:
                masks = [runner.instance(state, box=box)
                         for runner, state in ((original, states[0]), (finetuned, states[1]))]
                box_ious[label] = mask_iou(*masks)
        if instances:
            for index, clicks in enumerate(prompts.points.get(name, [])):
                label = f"{name}#points{index}"
                masks = [runner.instance(state, points=clicks)
                         for runner, state in ((original, states[0]), (finetuned, states[1]))]
                point_ious[label] = mask_iou(*masks)
    kinds = {
        "text": _ap_result("text", text_ref, text_pred, list(prompts.text), ref_score_thr),
        "box_exemplar": _ap_result("box_exemplar", ex_ref, ex_pred, ex_labels, ref_score_thr),
        "box_instance": _iou_result("box_instance", box_ious, instances, bool(ex_labels)),
        "point_instance": _iou_result(
            "point_instance", point_ious, instances,
            any(prompts.points.get(n) for n in names),
        ),
    }
    for result in kinds.values():
        if result.value is not None and not math.isfinite(result.value):
            result.value = None
    return OutputRetentionReport(
        kinds=kinds, images=names, threshold=threshold, ref_score_thr=ref_score_thr,
        min_score=finetuned.processor.confidence_threshold,
    )
