"""Export a fine-tuned full SAM3 image model (``Sam3PromptedDetector``) as a ``sam3.pt``-compatible
file.

    ds2d2-export-sam3-full work_dirs/sam3_prompted_dior/epoch_12.pth \\
        --base checkpoints/sam3.pt --out checkpoints/sam3_dior.pt \\
        --config configs/sam3/sam3_prompted_dior.py

With ``--base`` (recommended) the output is the original checkpoint with every weight of the
fine-tuned image model replaced (same keys, shapes, dtypes; the tracker's weights and the
neck's SAM2 branch, which the detector does not train, stay the base's) plus the spectral
adapter's keys under ``detector.backbone.vision_backbone.spectral_adapter.`` and its description
under the top-level entry ``ds2d2_spectral_adapter``.

What a user gets:

- sam3's own ``build_sam3_image_model(checkpoint_path=...)``: the fine-tuned SAM3 without the
  adapter (its keys are the only unexpected ones, ignored by sam3's ``strict=False`` load); the
  same model exactly only while the adapter is the identity (its ``gamma`` is 0, reported here);
- ``ds2d2_mm.apis.sam3.export_full.load_sam3_with_adapter(path)``: the fine-tuned model with the
  adapter, every key loaded strictly.

The adapter is a nonlinear residual branch (LayerNorm, GELU), so it cannot be folded into the
ViT's weights. The output is written atomically and never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="training checkpoint (.pth) of a full SAM3 detector")
    parser.add_argument("--out", required=True, help="output file (sam3.pt layout)")
    parser.add_argument("--base", help="the original sam3.pt: keep all its other keys")
    parser.add_argument(
        "--config", help="the detector's config: its model.arch is stored for the loader"
    )
    parser.add_argument("--prefix", help="SAM3 model key prefix in the checkpoint (default: found)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)

    from ds2d2_mm.apis.sam3.export_full import export_from_training_checkpoint
    from ds2d2_mm.utils.errors import CheckpointError

    arch = None
    if args.config:
        from mmengine.config import Config

        arch = Config.fromfile(args.config).model.get("arch")
        arch = arch.to_dict() if hasattr(arch, "to_dict") else arch
    try:
        summary = export_from_training_checkpoint(
            args.checkpoint, args.out, args.base, args.prefix, arch, args.force
        )
    except (CheckpointError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.describe())
    return 0



def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-export-sam3-full`` and ``tools/export_sam3_full.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
