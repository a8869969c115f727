"""Generates the built-in synthetic aerial dataset (COCO json + DOTA-style labels).

Example:
    ds2d2-make-synthetic --out data/synthetic            # default size
    ds2d2-make-synthetic --out data/synthetic --force    # regenerate
    ds2d2-make-synthetic --variant sar --looks 4         # 1-band SAR-like, data/synthetic_sar
    ds2d2-make-synthetic --variant rgbn                  # 4-band RGB+NIR, data/synthetic_rgbn
    ds2d2-make-synthetic --variant paired                # RGB + thermal PNGs, data/synthetic_paired

Splits: train, val and a held-out test split (as many images as val unless --num-test says
otherwise). A folder made before the test split existed gets only its test split added.
Variants (ds2d2_mm.tooling.synthetic.variants) hold the same scenes and boxes in other bands;
sar and rgbn also get band_stats.json (train split) for MultiBandDetDataPreprocessor.
"""

from __future__ import annotations

import argparse
import sys
import time

from ds2d2_mm.cli.summary import format_summary
from ds2d2_mm.tooling.synthetic import (
    VARIANTS,
    generate_synthetic_dataset,
    update_synthetic_dataset,
)

#: Where each variant goes when --out is not given.
DEFAULT_OUT = "data/synthetic"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help=f"dataset root (default: {DEFAULT_OUT} for rgb, "
                             f"{DEFAULT_OUT}_<variant> for the others)")
    parser.add_argument("--variant", choices=list(VARIANTS), default="rgb",
                        help="rgb (default), sar (1-band float32 TIFF, speckled), rgbn (4-band "
                             "uint16 TIFF), paired (RGB + thermal-like PNGs)")
    parser.add_argument("--looks", type=float, default=None,
                        help="looks of the SAR speckle (sar only; default 4)")
    parser.add_argument("--num-train", type=int, default=240)
    parser.add_argument("--num-val", type=int, default=60)
    parser.add_argument("--num-test", type=int, default=None,
                        help="held-out test images (default: as many as --num-val)")
    parser.add_argument("--img-size", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="regenerate even when a complete dataset is there")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is None:
        args.out = DEFAULT_OUT if args.variant == "rgb" else f"{DEFAULT_OUT}_{args.variant}"
    if args.looks is not None and args.variant != "sar":
        print(f"error: --looks applies to --variant sar only, not {args.variant}",
              file=sys.stderr)
        return 2
    params = dict(num_train=args.num_train, num_val=args.num_val, img_size=args.img_size,
                  seed=args.seed, num_test=args.num_test, variant=args.variant,
                  looks=args.looks)
    start = time.perf_counter()
    if args.force:
        summary = generate_synthetic_dataset(args.out, **params)
    else:
        summary = update_synthetic_dataset(args.out, **params)
        if summary is None:
            print(f"{args.out}: a complete dataset with these parameters is there, nothing to "
                  "do (--force regenerates it)")
            return 0
    print(format_summary(f"synthetic dataset ({time.perf_counter() - start:.1f} s)", summary))
    return 0


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-make-synthetic`` and ``tools/data/make_synthetic.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
