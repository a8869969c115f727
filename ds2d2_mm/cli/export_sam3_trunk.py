"""Export a fine-tuned SAM3 trunk back into a ``sam3.pt``-compatible checkpoint.

    ds2d2-export-sam3-trunk work_dirs/retina_sam3_dior/epoch_24.pth \\
        --base checkpoints/sam3.pt --out checkpoints/sam3_dior.pt

The export and the file it writes: :mod:`ds2d2_mm.apis.sam3.export_trunk`.
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.apis.sam3.export_trunk import export_trunk
from ds2d2_mm.utils.errors import CheckpointError


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



def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-export-sam3-trunk`` and ``tools/export_sam3_trunk.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
