"""Splits DOTA v1.0 images and labels into overlapping patches (resumable, parallel).

Example:
    ds2d2-split-dota --src data/DOTA/train --out data/DOTA/split_1024/trainval \
        --size 1024 --gap 200 --nproc 4 --coco-json data/DOTA/split_1024/trainval/hbb.json
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.cli.summary import run_converter
from ds2d2_mm.datasets.converters.dota_split import split_dota


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="folder with images/ and labelTxt/")
    parser.add_argument("--out", required=True, help="output folder (images/, annfiles/)")
    parser.add_argument("--size", type=int, default=1024, help="patch side in pixels")
    parser.add_argument("--gap", type=int, default=200, help="overlap of patches in pixels")
    parser.add_argument("--iof-thr", type=float, default=0.7,
                        help="minimum share of an object's area inside a patch to keep it")
    parser.add_argument("--nproc", type=int, default=4, help="worker processes")
    parser.add_argument("--coco-json", default=None,
                        help="also write a COCO json of horizontal boxes here")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip and count images with a bad label file or image")
    parser.add_argument("--truncated", default="polygon", choices=("polygon", "rectangle"),
                        help="objects cut by a patch edge: the whole polygon with difficult 2, as "
                        "MMRotate's splitter writes them (default), or the minimum-area "
                        "rectangle of the part inside with difficult 1 (the earlier convention)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first object without area or outside its image "
                        "instead of dropping and listing it")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_converter("DOTA split", lambda: split_dota(
        args.src, args.out, size=args.size, gap=args.gap, iof_thr=args.iof_thr, nproc=args.nproc,
        coco_json=args.coco_json, skip_bad=args.skip_bad, progress=not args.no_progress,
        truncated=args.truncated, strict=args.strict))


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-split-dota`` and ``tools/data/split_dota.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
