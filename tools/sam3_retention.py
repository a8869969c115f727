"""Retention check: does a fine-tuned SAM3 trunk still compute what the original computed?

    python tools/sam3_retention.py configs/sam3/retina_sam3_dior.py \\
        work_dirs/retina_sam3_dior/epoch_24.pth --images data/DIOR/JPEGImages-test --num 64

Builds the trunk described by the config twice, loads the original weights (the config's
``model.backbone.checkpoint`` or ``--original``) into one and the fine-tuned weights (the
training checkpoint, or a ``sam3.pt``-style export with ``--exported``) into the other, runs
both on held-out images (resized as in the config's test pipeline, normalised with its data
preprocessor) and prints per-image cosine similarity and linear CKA of the trunk outputs, their
mean and min, and PASS / FAIL against the threshold (default 0.95). Exit code 0 on PASS, 1 on
FAIL, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator

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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="config of the SAM3-backbone model")
    parser.add_argument(
        "checkpoint", help="fine-tuned checkpoint (training .pth, or see --exported)"
    )
    parser.add_argument("--images", required=True, help="folder of held-out images")
    parser.add_argument("--num", type=int, default=32, help="how many images (default 32)")
    parser.add_argument("--threshold", type=float, default=0.95, help="pass mark (default 0.95)")
    parser.add_argument("--original", help="original sam3.pt (default: the config's checkpoint)")
    parser.add_argument(
        "--exported",
        action="store_true",
        help="the checkpoint is a sam3.pt-style file (tools/export_sam3_trunk.py)",
    )
    parser.add_argument("--prefix", help="trunk key prefix in the training checkpoint")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    from mmengine.config import Config

    from ds2d2_mm.backbones.retention import compare_trunks
    from ds2d2_mm.backbones.sam3_trunk import (
        build_sam3_trunk,
        load_sam3_trunk,
        trunk_state_from_training_checkpoint,
    )
    from ds2d2_mm.checkpoint import CheckpointError

    cfg = Config.fromfile(args.config)
    backbone = cfg.model.backbone
    if backbone.get("type") != "SAM3ViTBackbone":
        print(f"error: {args.config} has no SAM3ViTBackbone (model.backbone)", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
