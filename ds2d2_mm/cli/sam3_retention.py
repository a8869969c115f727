"""Retention check: does a fine-tuned SAM3 still compute (and answer) what the original did?

Two modes.

``--mode features`` (default, the fast proxy): the ViT trunk's output features.

    ds2d2-sam3-retention configs/sam3/retina_sam3_dior.py \\
        work_dirs/retina_sam3_dior/epoch_24.pth --images data/DIOR/JPEGImages-test --num 64

``--mode outputs``: SAM3's own answers to prompts, for a full SAM3 image model fine-tuned as
``Sam3PromptedDetector`` (config) from a training checkpoint, or exported (``--exported``).

    ds2d2-sam3-retention configs/sam3/sam3_prompted_dior.py \\
        work_dirs/sam3_prompted_dior/epoch_12.pth --mode outputs \\
        --images data/DIOR/JPEGImages-test --num 64 --prompts prompts.json  # or --coco ann.json

builds the original (the config's ``model.checkpoint`` or ``--original``) and the fine-tuned
image model, answers text prompts, box prompts (as exemplars and, with SAM3's instance
predictor, as single-instance prompts) and point prompts with both through sam3's own
inference API, and reports per prompt kind the fine-tuned model's box AP against the original's
detections (text, box exemplars) or the mean mask IoU of the two models' masks (box / point
instance prompts), PASS / FAIL against the threshold; a JSON report is written too
(``--out``). See :mod:`ds2d2_mm.apis.sam3.output_retention`.

Features mode builds the trunk described by the config twice (a ``SAM3ViTBackbone`` detector's
trunk, or the ViT trunk of a full SAM3 model, compared before its spectral adapter), loads the
original weights (the config's ``model.backbone.checkpoint`` / ``model.checkpoint``, or
``--original``) into one and the fine-tuned weights (the training checkpoint, or a
``sam3.pt``-style export with ``--exported``) into the other, runs both on held-out images
(longest side resized to the trunk's input size, normalised with the data preprocessor's values;
SAM3's mean = std = 127.5 for a full model) and prints per-image cosine similarity and linear
CKA of the trunk outputs, their mean and min, and PASS / FAIL against the threshold (default
0.95). Exit code 0 on PASS, 1 on FAIL, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def list_images(folder: str, num: int) -> list[str]:
    """The first ``num`` image files of ``folder`` in name order."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder!r}")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder!r}")
    return [os.path.join(folder, n) for n in names[:num]]


def load_image(path: str, img_size: int, mean: Tensor, std: Tensor) -> Tensor:
    """(1, 3, H, W) RGB image, longest side ``img_size`` (aspect kept), normalised."""
    import mmcv

    image = mmcv.imread(path, channel_order="rgb")
    if image is None:
        raise OSError(f"could not read image {path!r}")
    image = mmcv.imrescale(image, (img_size, img_size))
    tensor = torch.from_numpy(image).permute(2, 0, 1).float()
    return ((tensor - mean[:, None, None]) / std[:, None, None])[None]


def build_parser() -> argparse.ArgumentParser:
    """The command line of both modes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="config of the SAM3 model (backbone or full detector)")
    parser.add_argument(
        "checkpoint", help="fine-tuned checkpoint (training .pth, or see --exported)"
    )
    parser.add_argument(
        "--mode", choices=("features", "outputs"), default="features",
        help="features: trunk cosine / CKA (fast proxy); outputs: SAM3's prompted answers",
    )
    parser.add_argument("--images", required=True, help="folder of held-out images")
    parser.add_argument("--num", type=int, default=32, help="how many images (default 32)")
    parser.add_argument("--threshold", type=float, default=0.95, help="pass mark (default 0.95)")
    parser.add_argument("--original", help="original sam3.pt (default: the config's checkpoint)")
    parser.add_argument(
        "--exported",
        action="store_true",
        help="the checkpoint is a sam3.pt-style file (tools/export_sam3_trunk.py, or "
        "tools/export_sam3_full.py in outputs mode)",
    )
    parser.add_argument("--prefix", help="trunk / SAM3 model key prefix in the training checkpoint")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    outputs = parser.add_argument_group("outputs mode")
    source = outputs.add_mutually_exclusive_group()
    source.add_argument("--prompts", help="prompt file (JSON / YAML: text, boxes, points)")
    source.add_argument(
        "--coco", help="COCO annotation file: category names, boxes and box centres as prompts"
    )
    outputs.add_argument(
        "--max-prompts-per-image", type=int, default=10,
        help="with --coco: box / point prompts per image, largest objects first (default 10)",
    )
    outputs.add_argument(
        "--ref-score-thr", type=float, default=0.5,
        help="the original's detections scoring at least this are the reference (default 0.5)",
    )
    outputs.add_argument(
        "--min-score", type=float, default=0.05,
        help="the fine-tuned model's detections scoring at least this are scored (default 0.05)",
    )
    outputs.add_argument(
        "--instance", choices=("auto", "on", "off"), default="auto",
        help="SAM3's SAM1-style instance predictor for box / point prompts (needs arch 'sam3' "
        "and CUDA; auto: when available)",
    )
    outputs.add_argument(
        "--out", help="JSON report (default: <checkpoint>_output_retention.json)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    if args.mode == "outputs":
        return main_outputs(args)
    if args.prompts or args.coco:
        print("error: --prompts / --coco belong to --mode outputs", file=sys.stderr)
        return 2
    return main_features(args)


def main_features(args: argparse.Namespace) -> int:
    """The trunk-feature mode (cosine similarity and linear CKA)."""
    from mmengine.config import Config

    from ds2d2_mm.apis.sam3.trunk_retention import compare_trunks
    from ds2d2_mm.models.backbones.sam3_trunk import (
        build_sam3_trunk,
        load_sam3_trunk,
        trunk_state_from_training_checkpoint,
    )
    from ds2d2_mm.utils.errors import CheckpointError

    cfg = Config.fromfile(args.config)
    if "arch" in cfg.model:  # a full SAM3 image model (Sam3PromptedDetector): its ViT trunk
        return features_of_full_sam3(args, cfg)
    backbone = cfg.model.get("backbone") or {}
    if backbone.get("type") != "SAM3ViTBackbone":
        print(
            f"error: {args.config} has neither a SAM3ViTBackbone (model.backbone) nor a full "
            f"SAM3 model (model.arch)", file=sys.stderr,
        )
        return 2
    original_path = args.original or backbone.get("checkpoint")
    if not original_path:
        print(
            "error: give --original (the config has no model.backbone.checkpoint)", file=sys.stderr
        )
        return 2
    arch = backbone.get("arch", "sam3")
    trunk_cfg = dict(backbone.get("trunk_cfg") or {})
    preprocessor = cfg.model.get("data_preprocessor", {})
    mean = torch.tensor(preprocessor.get("mean", [127.5] * 3), dtype=torch.float32)
    std = torch.tensor(preprocessor.get("std", [127.5] * 3), dtype=torch.float32)
    try:
        original = build_sam3_trunk(arch, False, **trunk_cfg)
        load_sam3_trunk(original, original_path)
        finetuned = build_sam3_trunk(arch, False, **trunk_cfg)
        if args.exported:
            load_sam3_trunk(finetuned, args.checkpoint)
        else:
            state, _ = trunk_state_from_training_checkpoint(args.checkpoint, args.prefix)
            finetuned.load_state_dict(state)
        paths = list_images(args.images, args.num)
    except (CheckpointError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    original.to(device)
    finetuned.to(device)
    img_size = original.patch_embed.proj.kernel_size[0] * original.blocks[-1].attn.input_size[0]

    def images() -> Iterator[tuple[str, Tensor]]:
        for path in paths:
            yield os.path.basename(path), load_image(path, img_size, mean, std).to(device)

    report = compare_trunks(finetuned, original, images(), args.threshold)
    print(report.table())
    return 0 if report.passed else 1


def features_of_full_sam3(args: argparse.Namespace, cfg: Any) -> int:
    """Features mode for a full SAM3 image model: the ViT trunk's output (before the adapter)
    of the original and the fine-tuned model, compared by cosine similarity and linear CKA."""
    from ds2d2_mm.apis.sam3.export_full import load_finetuned_sam3
    from ds2d2_mm.apis.sam3.output_retention import model_resolution
    from ds2d2_mm.apis.sam3.trunk_retention import compare_trunks
    from ds2d2_mm.models.detectors.sam3_prompted.build import build_sam3_image_model
    from ds2d2_mm.utils.errors import CheckpointError

    model_cfg = cfg.model
    original_path = args.original or model_cfg.get("checkpoint")
    if not original_path:
        print("error: give --original (the config has no model.checkpoint)", file=sys.stderr)
        return 2
    arch = model_cfg.get("arch")
    arch = arch.to_dict() if hasattr(arch, "to_dict") else arch
    build_args = dict(arch=arch, bpe_path=model_cfg.get("bpe_path"),
                      img_size=model_cfg.get("img_size"))
    try:
        original = build_sam3_image_model(checkpoint=original_path, **build_args)
        finetuned, _ = load_finetuned_sam3(
            args.checkpoint, original_path, exported=args.exported, prefix=args.prefix,
            **build_args,
        )
        paths = list_images(args.images, args.num)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    img_size = model_resolution(original)
    half = torch.full((3,), 127.5)  # SAM3's input normalisation: mean 0.5, std 0.5 on [0, 1]

    def images() -> Iterator[tuple[str, Tensor]]:
        for path in paths:
            yield os.path.basename(path), load_image(path, img_size, half, half).to(device)

    trunks = [m.backbone.vision_backbone.trunk.to(device) for m in (finetuned, original)]
    report = compare_trunks(*trunks, images(), args.threshold)
    print(report.table())
    return 0 if report.passed else 1


def read_rgb(path: str) -> Any:
    """The image at ``path`` as an RGB PIL image.

    Raises:
        ImageError: the file cannot be read as an image.
    """
    from PIL import Image, UnidentifiedImageError

    from ds2d2_mm.utils.errors import ImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageError(path, f"cannot be read as an image: {exc}") from exc


def image_sizes(paths: list[str]) -> dict[str, tuple[int, int]]:
    """File name -> (width, height), read from the headers (errors name the file)."""
    from PIL import Image, UnidentifiedImageError

    from ds2d2_mm.utils.errors import ImageError

    sizes = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes[os.path.basename(path)] = image.size
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise ImageError(path, f"cannot be read as an image: {exc}") from exc
    return sizes


def main_outputs(args: argparse.Namespace) -> int:
    """The SAM3-outputs mode (box AP and mask IoU per prompt kind)."""
    from mmengine.config import Config
    from tqdm import tqdm

    from ds2d2_mm.apis.sam3.export_full import load_finetuned_sam3
    from ds2d2_mm.apis.sam3.output_retention import (
        Sam3PromptRunner,
        compare_sam3_outputs,
        sam3_inference_on,
    )
    from ds2d2_mm.apis.sam3.retention_prompts import (
        PromptError,
        check_prompts_fit_images,
        load_prompt_file,
        prompts_from_coco,
    )
    from ds2d2_mm.utils.errors import CheckpointError, DatasetError
    from ds2d2_mm.utils.io import atomic_write_json

    if not (args.prompts or args.coco):
        print("error: --mode outputs needs --prompts FILE or --coco ANN.json", file=sys.stderr)
        return 2
    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model
    if "arch" not in model_cfg:
        print(
            f"error: {args.config}: model ({model_cfg.get('type')}) has no 'arch': --mode outputs "
            f"needs the config of a full SAM3 model (Sam3PromptedDetector)",
            file=sys.stderr,
        )
        return 2
    original_path = args.original or model_cfg.get("checkpoint")
    if not original_path:
        print("error: give --original (the config has no model.checkpoint)", file=sys.stderr)
        return 2
    arch = model_cfg.get("arch")
    arch = arch.to_dict() if hasattr(arch, "to_dict") else arch
    device = torch.device(args.device)
    can_instance = arch == "sam3" and device.type == "cuda"
    if args.instance == "on" and not can_instance:
        print(
            "error: --instance on needs arch 'sam3' and a CUDA device (sam3 builds its tracker "
            "there only)", file=sys.stderr,
        )
        return 2
    instance = can_instance and args.instance != "off"
    try:
        every = list_images(args.images, sys.maxsize)
        paths = every[: args.num]
        sizes = image_sizes(paths)
        if args.prompts:
            prompts, source = load_prompt_file(args.prompts), args.prompts
            absent = sorted(set(prompts.image_names()) - {os.path.basename(p) for p in every})
            if absent:
                raise PromptError(
                    f"{source}: prompts name images that are not in {args.images!r}: {absent[:5]}"
                )
        else:
            prompts = prompts_from_coco(
                args.coco, args.max_prompts_per_image,
                class_prompts=model_cfg.get("class_prompts"),
            )
            source = args.coco
        skipped = sum(len(v) for k, v in [*prompts.boxes.items(), *prompts.points.items()]
                      if k not in sizes)
        prompts.boxes = {k: v for k, v in prompts.boxes.items() if k in sizes}
        prompts.points = {k: v for k, v in prompts.points.items() if k in sizes}
        check_prompts_fit_images(prompts, sizes, source)
        build_args = dict(
            arch=arch, bpe_path=model_cfg.get("bpe_path"),
            enable_inst_interactivity=instance, img_size=model_cfg.get("img_size"),
        )
        from ds2d2_mm.models.detectors.sam3_prompted.build import build_sam3_image_model

        original = build_sam3_image_model(checkpoint=original_path, **build_args).eval()
        finetuned, from_original = load_finetuned_sam3(
            args.checkpoint, original_path, exported=args.exported, prefix=args.prefix,
            **build_args,
        )
    except (CheckpointError, DatasetError, PromptError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    original.to(device)
    finetuned.to(device)

    def images() -> Iterator[tuple[str, Any]]:
        for path in paths:
            yield os.path.basename(path), read_rgb(path)

    def progress(items: Any) -> Any:
        return tqdm(items, total=len(paths), desc="SAM3 outputs", unit="img", file=sys.stderr)

    with sam3_inference_on(device):
        report = compare_sam3_outputs(
            Sam3PromptRunner(finetuned, device, args.min_score),
            Sam3PromptRunner(original, device, args.min_score),
            images(), prompts, args.threshold, args.ref_score_thr, progress,
        )
    report.inputs = {
        "config": args.config, "checkpoint": args.checkpoint, "exported": args.exported,
        "original": original_path, "prompts": source, "instance_predictor": instance,
        "keys_from_original": len(from_original), "prompts_not_run": skipped,
    }
    out = args.out or f"{os.path.splitext(args.checkpoint)[0]}_output_retention.json"
    atomic_write_json(out, report.to_json(), indent=2)
    print(report.table())
    if args.instance == "auto" and not instance and (prompts.boxes or prompts.points):
        print("note: SAM3's instance predictor needs arch 'sam3' on CUDA; box / point prompts "
              "were measured as exemplars only")
    if skipped:
        print(f"note: {skipped} box / point prompts on images beyond --num {args.num} not run")
    print(f"report written to {out}")
    return 0 if report.passed else 1



def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-sam3-retention`` and ``tools/sam3_retention.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
