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

The runs themselves: :mod:`ds2d2_mm.apis.sam3.retention_run`; this module reads the command
line and the config, and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch


def _error(message: str) -> int:
    """Print a usage error; its exit code."""
    print(f"error: {message}", file=sys.stderr)
    return 2


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
        return _error("--prompts / --coco belong to --mode outputs")
    return main_features(args)


def _original(args: argparse.Namespace, model_cfg: Any, key: str) -> str | None:
    """The original sam3.pt: ``--original``, else the config's ``model.<key>``."""
    return args.original or model_cfg.get(key)


def main_features(args: argparse.Namespace) -> int:
    """The trunk-feature mode (cosine similarity and linear CKA)."""
    from mmengine.config import Config

    from ds2d2_mm.apis.sam3.retention_run import list_images, load_trunks, trunk_retention
    from ds2d2_mm.utils.errors import CheckpointError

    cfg = Config.fromfile(args.config)
    if "arch" in cfg.model:  # a full SAM3 image model (Sam3PromptedDetector): its ViT trunk
        return features_of_full_sam3(args, cfg)
    backbone = cfg.model.get("backbone") or {}
    if backbone.get("type") != "SAM3ViTBackbone":
        return _error(f"{args.config} has neither a SAM3ViTBackbone (model.backbone) nor a full "
                      f"SAM3 model (model.arch)")  # fmt: skip
    original_path = _original(args, backbone, "checkpoint")
    if not original_path:
        return _error("give --original (the config has no model.backbone.checkpoint)")
    preprocessor = cfg.model.get("data_preprocessor", {})
    try:
        finetuned, original = load_trunks(
            backbone, args.checkpoint, original_path, args.exported, args.prefix
        )
        paths = list_images(args.images, args.num)
    except (CheckpointError, FileNotFoundError, RuntimeError) as exc:
        return _error(str(exc))
    report = trunk_retention(
        finetuned, original, paths, preprocessor.get("mean", [127.5] * 3),
        preprocessor.get("std", [127.5] * 3), args.device, args.threshold,
    )  # fmt: skip
    print(report.table())
    return 0 if report.passed else 1


def features_of_full_sam3(args: argparse.Namespace, cfg: Any) -> int:
    """Features mode for a full SAM3 image model: the ViT trunk's output (before the adapter)
    of the original and the fine-tuned model, compared by cosine similarity and linear CKA."""
    from ds2d2_mm.apis.sam3.retention_run import (
        full_sam3_trunk_retention,
        list_images,
        load_sam3_models,
    )
    from ds2d2_mm.utils.errors import CheckpointError

    original_path = _original(args, cfg.model, "checkpoint")
    if not original_path:
        return _error("give --original (the config has no model.checkpoint)")
    try:
        finetuned, original, _ = load_sam3_models(
            cfg.model, args.checkpoint, original_path, args.exported, args.prefix
        )
        paths = list_images(args.images, args.num)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        return _error(str(exc))
    report = full_sam3_trunk_retention(finetuned, original, paths, args.device, args.threshold)
    print(report.table())
    return 0 if report.passed else 1


def main_outputs(args: argparse.Namespace) -> int:
    """The SAM3-outputs mode (box AP and mask IoU per prompt kind)."""
    from mmengine.config import Config
    from tqdm import tqdm

    from ds2d2_mm.apis.sam3.retention_prompts import PromptError
    from ds2d2_mm.apis.sam3.retention_run import (
        load_sam3_models,
        output_retention,
        prepare_prompts,
    )
    from ds2d2_mm.utils.errors import CheckpointError, DatasetError
    from ds2d2_mm.utils.io import atomic_write_json

    if not (args.prompts or args.coco):
        return _error("--mode outputs needs --prompts FILE or --coco ANN.json")
    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model
    if "arch" not in model_cfg:
        return _error(f"{args.config}: model ({model_cfg.get('type')}) has no 'arch': --mode "
                      f"outputs needs the config of a full SAM3 model (Sam3PromptedDetector)")
    original_path = _original(args, model_cfg, "checkpoint")
    if not original_path:
        return _error("give --original (the config has no model.checkpoint)")
    device = torch.device(args.device)
    can_instance = model_cfg.get("arch") == "sam3" and device.type == "cuda"
    if args.instance == "on" and not can_instance:
        return _error("--instance on needs arch 'sam3' and a CUDA device (sam3 builds its "
                      "tracker there only)")  # fmt: skip
    instance = can_instance and args.instance != "off"
    try:
        paths, prepared = prepare_prompts(
            args.images, args.num, args.prompts, args.coco, args.max_prompts_per_image,
            class_prompts=model_cfg.get("class_prompts"),
        )  # fmt: skip
        finetuned, original, from_original = load_sam3_models(
            model_cfg, args.checkpoint, original_path, args.exported, args.prefix, instance
        )
    except (CheckpointError, DatasetError, PromptError, FileNotFoundError, ValueError) as exc:
        return _error(str(exc))

    def progress(items: Any) -> Any:
        return tqdm(items, total=len(paths), desc="SAM3 outputs", unit="img", file=sys.stderr)

    prompts = prepared.prompts
    report = output_retention(
        finetuned, original, paths, prompts, device, args.threshold, args.ref_score_thr,
        args.min_score, progress,
    )  # fmt: skip
    report.inputs = {
        "config": args.config, "checkpoint": args.checkpoint, "exported": args.exported,
        "original": original_path, "prompts": prepared.source, "instance_predictor": instance,
        "keys_from_original": len(from_original), "prompts_not_run": prepared.skipped,
    }
    out = args.out or f"{os.path.splitext(args.checkpoint)[0]}_output_retention.json"
    atomic_write_json(out, report.to_json(), indent=2)
    print(report.table())
    if args.instance == "auto" and not instance and (prompts.boxes or prompts.points):
        print("note: SAM3's instance predictor needs arch 'sam3' on CUDA; box / point prompts "
              "were measured as exemplars only")
    if prepared.skipped:
        print(f"note: {prepared.skipped} box / point prompts on images beyond --num {args.num} "
              "not run")
    print(f"report written to {out}")
    return 0 if report.passed else 1


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-sam3-retention`` and ``tools/sam3_retention.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
