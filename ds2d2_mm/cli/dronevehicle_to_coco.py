"""Converts DroneVehicle (RGB + infrared pairs, official layout) to paired COCO json files.

Example (crop the 100 px white border, as is usual: 840x712 -> 640x512):
    ds2d2-dronevehicle-to-coco --root data/DroneVehicle --out data/DroneVehicle640 \
        --crop-border 100

writes data/DroneVehicle640/annotations/{train,val,test}.json and the cropped pairs in
data/DroneVehicle640/<split>/{rgb,ir}/. Without --crop-border only the json files are written and
the configs read the official folders (the summary prints the data_prefix to use). Both
modalities share one label set: the infrared labels by default (--labels ir; the DroneVehicle
papers evaluate on them), or the RGB ones (--labels rgb).
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.cli.summary import run_converter
from ds2d2_mm.datasets.converters.dronevehicle import (
    DRONEVEHICLE_SPLITS,
    LABEL_SETS,
    convert_dronevehicle,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True,
                        help="DroneVehicle root (<split>/<split>img, imgr, label, labelr)")
    parser.add_argument("--out", required=True,
                        help="output root: annotations/<split>.json (and <split>/{rgb,ir}/ "
                        "with --crop-border)")
    parser.add_argument("--splits", nargs="+", default=list(DRONEVEHICLE_SPLITS),
                        choices=DRONEVEHICLE_SPLITS)
    parser.add_argument("--labels", default="ir", choices=sorted(LABEL_SETS),
                        help="label set used for both modalities (default: ir, the infrared "
                        "labels; the RGB ones miss vehicles in night-time images)")
    parser.add_argument("--crop-border", type=int, default=0, metavar="PX",
                        help="cut PX pixels from every side and write the cropped pairs "
                        "(100: the official white border); boxes are shifted and clipped")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip (and list at the end) pairs whose XML or image is unreadable")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first degenerate or out-of-image object instead of "
                        "dropping and listing it")
    parser.add_argument("--nproc", type=int, default=4,
                        help="worker processes that parse, decode and crop")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_converter("DroneVehicle -> paired COCO", lambda: convert_dronevehicle(
        args.root, args.out, args.splits, labels=args.labels, crop_border=args.crop_border,
        skip_bad=args.skip_bad, progress=not args.no_progress, nproc=args.nproc,
        strict=args.strict),
        skipped="pairs", also=(ValueError,))


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-dronevehicle-to-coco`` and ``tools/data/dronevehicle_to_coco.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
