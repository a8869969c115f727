"""Converts DIOR (official layout) to COCO json files, one per split.

Example:
    ds2d2-dior-to-coco --root data/DIOR --out data/DIOR/annotations \
        --splits trainval test train val
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.cli.summary import run_converter
from ds2d2_mm.datasets.converters.dior import DIOR_SPLITS, convert_dior


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="DIOR root (JPEGImages-*, Annotations, "
                        "ImageSets)")
    parser.add_argument("--out", required=True, help="output folder of <split>.json")
    parser.add_argument("--splits", nargs="+", default=["trainval", "test"], choices=DIOR_SPLITS)
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip and list images whose annotation or image file is unreadable")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first box that would be dropped (no width or height "
                        "inside the image) instead of dropping and listing it")
    parser.add_argument("--nproc", type=int, default=4,
                        help="worker processes that parse annotations and decode images")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_converter("DIOR -> COCO", lambda: convert_dior(
        args.root, args.out, args.splits, skip_bad=args.skip_bad, progress=not args.no_progress,
        nproc=args.nproc, strict=args.strict))


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-dior-to-coco`` and ``tools/data/dior_to_coco.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
