"""Export a fine-tuned SAM3 trunk back into a ``sam3.pt``-compatible checkpoint.

    python tools/export_sam3_trunk.py work_dirs/retina_sam3_dior/epoch_24.pth \\
        --base checkpoints/sam3.pt --out checkpoints/sam3_dior.pt

With ``--base`` (recommended) the output is the original checkpoint with its trunk weights
replaced: the same keys, shapes, dtypes and layout (``{"model": ...}`` or flat), so SAM3's own
builder (``build_sam3_image_model(checkpoint_path=...)``) and its prompted segmentation load it
unchanged. Without ``--base`` only the trunk is written, under the key prefix
``detector.backbone.vision_backbone.trunk.``, its RoPE tables left out (SAM3 recomputes them).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from ds2d2_mm.backbones.sam3_trunk import (
    SAM3_TRUNK_PREFIX,
    trunk_state_from_training_checkpoint,
    trunk_to_sam3_state,
)
from ds2d2_mm.checkpoint import CheckpointError, allow_mmengine_checkpoints


def export_trunk(
    checkpoint: str, out: str, base: str | None = None, prefix: str | None = None
) -> int:
    """Write the trunk of training checkpoint ``checkpoint`` as a SAM3 checkpoint at ``out``.

    Returns:
        The number of trunk tensors written.
    """
    trunk, _ = trunk_state_from_training_checkpoint(checkpoint, prefix)
    if base is None:
        payload: dict = trunk_to_sam3_state(trunk)
        written = len(payload)
    else:
        if not os.path.isfile(base):
            raise CheckpointError(f"base SAM3 checkpoint not found: {base!r}")
        allow_mmengine_checkpoints()
        raw = torch.load(base, map_location="cpu", weights_only=True, mmap=True)
        inner_key = next((k for k in ("model", "state_dict") if isinstance(raw.get(k), dict)), None)
        inner = raw[inner_key] if inner_key else raw
        merged = trunk_to_sam3_state(trunk, base=inner)
        payload = {**raw, inner_key: merged} if inner_key else merged
        written = sum(1 for k in merged if k.startswith(SAM3_TRUNK_PREFIX) and "freqs_cis" not in k)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, out)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="training checkpoint (.pth) of a SAM3-backbone model")
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument("--base", help="the original sam3.pt: keep all its other keys")
    parser.add_argument("--prefix", help="trunk key prefix in the checkpoint (default: found)")
    args = parser.parse_args(argv)
    try:
        count = export_trunk(args.checkpoint, args.out, args.base, args.prefix)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {count} trunk tensors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
