"""The retention runs of ``ds2d2-sam3-retention``: held-out images in, a report out.

Two modes, each in two steps (load the original and the fine-tuned model; run both and compare),
so that a caller can tell a bad input (missing or mismatched files) from a failure of the run:

- features (the fast proxy): the ViT trunk's output maps of both models, compared per image by
  cosine similarity and linear CKA (:mod:`.trunk_retention`). The trunk is the one a
  ``SAM3ViTBackbone`` config describes (:func:`load_trunks`, :func:`trunk_retention`), or the
  ViT trunk of a full SAM3 image model before its spectral adapter (:func:`load_sam3_models`,
  :func:`full_sam3_trunk_retention`);
- outputs: SAM3's own answers to text, box and point prompts (:mod:`.output_retention`), on the
  prompts of a prompt file or of a COCO annotation file (:func:`prepare_prompts`,
  :func:`load_sam3_models`, :func:`output_retention`).

Images: the first ``num`` files of a folder in name order (:func:`list_images`); the features
mode resizes each to the trunk's input side (longest side, aspect kept) and normalises it
(:func:`load_image`), the outputs mode hands sam3's processor the RGB image (:func:`read_rgb`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ...models.backbones.sam3_trunk import (
    build_sam3_trunk,
    load_sam3_trunk,
    trunk_state_from_training_checkpoint,
)
from ...utils.errors import ImageError
from .export_full import load_finetuned_sam3
from .output_retention import (
    OutputRetentionReport,
    Sam3PromptRunner,
    compare_sam3_outputs,
    model_resolution,
    sam3_inference_on,
)
from .retention_prompts import (
    PromptError,
    PromptSet,
    check_prompts_fit_images,
    load_prompt_file,
    prompts_from_coco,
)
from .trunk_retention import RetentionReport, compare_trunks

__all__ = [
    "IMAGE_EXTENSIONS",
    "SAM3_INPUT_MEAN_STD",
    "PreparedPrompts",
    "full_sam3_trunk_retention",
    "image_sizes",
    "list_images",
    "load_image",
    "load_sam3_models",
    "load_trunks",
    "output_retention",
    "prepare_prompts",
    "read_rgb",
    "sam3_build_args",
    "trunk_retention",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: SAM3's input normalisation (mean 0.5, std 0.5 on [0, 1]), on 0..255 pixel values.
SAM3_INPUT_MEAN_STD = 127.5


# ---------------------------------------------------------------------- images
def list_images(folder: str, num: int) -> list[str]:
    """The first ``num`` image files of ``folder`` in name order.

    Raises:
        FileNotFoundError: no such folder, or no image in it.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder!r}")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder!r}")
    return [os.path.join(folder, n) for n in names[:num]]


def load_image(path: str, img_size: int, mean: Tensor, std: Tensor) -> Tensor:
    """(1, 3, H, W) RGB image, longest side ``img_size`` (aspect kept), normalised with the
    per-channel (3,) ``mean`` and ``std``."""
    import mmcv

    image = mmcv.imread(path, channel_order="rgb")
    if image is None:
        raise OSError(f"could not read image {path!r}")
    image = mmcv.imrescale(image, (img_size, img_size))
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()
    return ((tensor - mean[:, None, None]) / std[:, None, None])[None]


def _open_image(path: str, read: Callable[[Any], Any]) -> Any:
    """``read`` of the PIL image at ``path``; any failure to read it names the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return read(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageError(path, f"cannot be read as an image: {exc}") from exc


def read_rgb(path: str) -> Any:
    """The image at ``path`` as an RGB PIL image.

    Raises:
        ImageError: the file cannot be read as an image.
    """
    return _open_image(path, lambda image: image.convert("RGB"))


def image_sizes(paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """File name -> (width, height), read from the headers.

    Raises:
        ImageError: a file cannot be read as an image (named).
    """
    return {os.path.basename(p): _open_image(p, lambda image: image.size) for p in paths}


def _named(paths: Sequence[str], load: Callable[[str], Any]) -> Iterator[tuple[str, Any]]:
    """``(file name, load(path))`` for each path, loaded one at a time."""
    for path in paths:
        yield os.path.basename(path), load(path)


# ---------------------------------------------------------------------- features mode
def load_trunks(
    backbone: Mapping[str, Any],
    checkpoint: str,
    original: str,
    exported: bool = False,
    prefix: str | None = None,
) -> tuple[nn.Module, nn.Module]:
    """The fine-tuned and the original trunk of a ``SAM3ViTBackbone`` config, on the CPU.

    Args:
        backbone: The config's ``model.backbone`` (``arch``, ``trunk_cfg``).
        checkpoint: The fine-tuned weights: a training checkpoint, or with ``exported`` a file
            in ``sam3.pt``'s layout.
        original: The original ``sam3.pt``.
        exported: ``checkpoint`` is in ``sam3.pt``'s layout.
        prefix: Where the trunk sits in a training checkpoint (``None``: found).

    Raises:
        CheckpointError: unreadable files, no trunk, or weights that do not fit (named).
        RuntimeError: the training checkpoint's trunk does not fit the config's.
    """
    arch = backbone.get("arch", "sam3")
    trunk_cfg = dict(backbone.get("trunk_cfg") or {})
    original_trunk = build_sam3_trunk(arch, False, **trunk_cfg)
    load_sam3_trunk(original_trunk, original)
    finetuned = build_sam3_trunk(arch, False, **trunk_cfg)
    if exported:
        load_sam3_trunk(finetuned, checkpoint)
    else:
        state, _ = trunk_state_from_training_checkpoint(checkpoint, prefix)
        finetuned.load_state_dict(state)
    return finetuned, original_trunk


def trunk_retention(
    finetuned: nn.Module,
    original: nn.Module,
    image_paths: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
    threshold: float,
) -> RetentionReport:
    """Cosine similarity and linear CKA of the two trunks' outputs on each image (resized to
    the trunk's input side, normalised with the data preprocessor's ``mean`` / ``std``)."""
    device = torch.device(device)
    original.to(device)
    finetuned.to(device)
    img_size = original.patch_embed.proj.kernel_size[0] * original.blocks[-1].attn.input_size[0]
    mean_t = torch.tensor(mean, dtype=torch.float32)
    std_t = torch.tensor(std, dtype=torch.float32)
    images = _named(image_paths, lambda p: load_image(p, img_size, mean_t, std_t).to(device))
    return compare_trunks(finetuned, original, images, threshold)


def sam3_build_args(model: Mapping[str, Any], instance: bool = False) -> dict[str, Any]:
    """The :func:`~ds2d2_mm.models.detectors.sam3_prompted.build.build_sam3_image_model`
    arguments of a full SAM3 model config (``Sam3PromptedDetector``): arch, BPE vocabulary,
    input size, and whether to build the instance predictor."""
    arch = model.get("arch")
    return dict(arch=arch.to_dict() if hasattr(arch, "to_dict") else arch,
                bpe_path=model.get("bpe_path"), enable_inst_interactivity=instance,
                img_size=model.get("img_size"))  # fmt: skip


def load_sam3_models(
    model: Mapping[str, Any],
    checkpoint: str,
    original: str,
    exported: bool = False,
    prefix: str | None = None,
    instance: bool = False,
) -> tuple[nn.Module, nn.Module, list[str]]:
    """The fine-tuned and the original SAM3 image model of a ``Sam3PromptedDetector`` config.

    Args:
        model: The config's ``model``.
        checkpoint: A training checkpoint, or with ``exported`` a file in ``sam3.pt``'s layout.
        original: The original ``sam3.pt``.
        exported: ``checkpoint`` is in ``sam3.pt``'s layout.
        prefix: Where the image model sits in a training checkpoint (``None``: found).
        instance: Build SAM3's instance predictor too (arch ``"sam3"`` on CUDA only).

    Returns:
        The fine-tuned model, the original (both in eval mode, on the CPU), and the fine-tuned
        model's keys taken from the original (absent from ``checkpoint``).

    Raises:
        CheckpointError: unreadable files, or weights that do not fit (named).
        ValueError: a bad arch or input size.
    """
    from ...models.detectors.sam3_prompted.build import build_sam3_image_model

    build_args = sam3_build_args(model, instance)
    original_model = build_sam3_image_model(checkpoint=original, **build_args).eval()
    finetuned, from_original = load_finetuned_sam3(
        checkpoint, original, exported=exported, prefix=prefix, **build_args
    )
    return finetuned, original_model, from_original


def full_sam3_trunk_retention(
    finetuned: nn.Module,
    original: nn.Module,
    image_paths: Sequence[str],
    device: torch.device | str,
    threshold: float,
) -> RetentionReport:
    """Cosine similarity and linear CKA of the two image models' ViT trunk outputs (before the
    spectral adapter), on images at SAM3's input side and normalisation."""
    device = torch.device(device)
    img_size = model_resolution(original)
    half = torch.full((3,), SAM3_INPUT_MEAN_STD)
    images = _named(image_paths, lambda p: load_image(p, img_size, half, half).to(device))
    trunks = [m.backbone.vision_backbone.trunk.to(device) for m in (finetuned, original)]
    return compare_trunks(*trunks, images, threshold)


# ---------------------------------------------------------------------- outputs mode
@dataclass
class PreparedPrompts:
    """The prompts of an outputs run, restricted to the images it runs on.

    Attributes:
        prompts: The prompts (box and point prompts only for the images run).
        source: The file they came from.
        skipped: Box / point prompts on images of the folder beyond those run.
    """

    prompts: PromptSet
    source: str
    skipped: int


def prepare_prompts(
    folder: str,
    num: int,
    prompt_file: str | None = None,
    coco: str | None = None,
    max_prompts_per_image: int = 10,
    class_prompts: Mapping[str, str] | None = None,
) -> tuple[list[str], PreparedPrompts]:
    """The images of an outputs run and their prompts, checked against each other.

    Args:
        folder: The image folder; its first ``num`` images (name order) are run.
        num: How many images.
        prompt_file: A prompt file (JSON / YAML: text, boxes, points); or else
        coco: A COCO annotation file (category names, boxes and box centres as prompts).
        max_prompts_per_image: With ``coco``: box / point prompts per image, largest first.
        class_prompts: With ``coco``: text to ask for a category, by name.

    Raises:
        PromptError: a prompt file that names images not in ``folder``, or prompts outside
            their image; neither file given.
        DatasetError: an unreadable image or annotation file (named).
        FileNotFoundError: no such folder, or no image in it.
    """
    every = list_images(folder, sys.maxsize)
    paths = every[:num]
    sizes = image_sizes(paths)
    if prompt_file:
        prompts, source = load_prompt_file(prompt_file), prompt_file
        absent = sorted(set(prompts.image_names()) - {os.path.basename(p) for p in every})
        if absent:
            raise PromptError(
                f"{source}: prompts name images that are not in {folder!r}: {absent[:5]}"
            )
    elif coco:
        prompts = prompts_from_coco(coco, max_prompts_per_image, class_prompts=class_prompts)
        source = coco
    else:
        raise PromptError("an outputs run needs a prompt file or a COCO annotation file")
    skipped = sum(len(v) for k, v in [*prompts.boxes.items(), *prompts.points.items()]
                  if k not in sizes)  # fmt: skip
    prompts.boxes = {k: v for k, v in prompts.boxes.items() if k in sizes}
    prompts.points = {k: v for k, v in prompts.points.items() if k in sizes}
    check_prompts_fit_images(prompts, sizes, source)
    return paths, PreparedPrompts(prompts, source, skipped)


def output_retention(
    finetuned: nn.Module,
    original: nn.Module,
    image_paths: Sequence[str],
    prompts: PromptSet,
    device: torch.device | str,
    threshold: float,
    ref_score_thr: float,
    min_score: float,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> OutputRetentionReport:
    """Both image models answer ``prompts`` on each image through sam3's inference API; their
    answers are compared per prompt kind (:func:`.output_retention.compare_sam3_outputs`).

    Args:
        finetuned, original: ``Sam3Image`` models in eval mode (moved to ``device``).
        image_paths: The images, read as RGB one at a time.
        prompts: The prompts (:func:`prepare_prompts`).
        device: Where the models run.
        threshold: Pass mark of every prompt kind.
        ref_score_thr: The original's detections at or above this are the reference.
        min_score: The fine-tuned model's detections at or above this are scored.
        progress: Wraps the image iterator (e.g. a progress bar).
    """
    device = torch.device(device)
    original.to(device)
    finetuned.to(device)
    with sam3_inference_on(device):
        return compare_sam3_outputs(
            Sam3PromptRunner(finetuned, device, min_score),
            Sam3PromptRunner(original, device, min_score),
            _named(image_paths, read_rgb), prompts, threshold, ref_score_thr, progress,
        )
