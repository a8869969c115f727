"""Per-band mean and std of multi-band rasters (TIFF / GeoTIFF), streamed one file at a time.

Example:
    ds2d2-band-stats data/s2/train --out data/s2/band_stats.json --nodata 0
    ds2d2-band-stats data/s2/annotations/train.json --root data/s2 --bands 3 2 1 7

The source is a folder (every .tif / .tiff in it; --recursive for sub-folders) or a COCO json
(its images' file_name, relative to --root, default: the json's folder). The JSON written holds
{"bands", "mean", "std", "count", "valid", "files", "nodata", "band_indices"}
(ds2d2_mm.datasets.band_statistics); MultiBandDetDataPreprocessor(stats_file=...) and
LoadMultiBandImage(fill=...) read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from ds2d2_mm.datasets.band_statistics import BandStatsAccumulator
from ds2d2_mm.datasets.raster import TIFF_SUFFIXES, read_raster, select_bands
from ds2d2_mm.utils.errors import DatasetError
from ds2d2_mm.utils.io import atomic_write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="folder of rasters, or a COCO json listing them")
    parser.add_argument("--root", default=None,
                        help="image root of a COCO json's file_name (default: its folder)")
    parser.add_argument("--out", default=None,
                        help="output JSON (default: band_stats.json next to the source)")
    parser.add_argument("--nodata", type=float, default=None,
                        help="value left out of the statistics (nan allowed)")
    parser.add_argument("--bands", type=int, nargs="+", default=None,
                        help="raster band indices to keep, in order (default: all)")
    parser.add_argument("--recursive", action="store_true", help="also read sub-folders")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def raster_files(src: Path, root: str | None = None, recursive: bool = False) -> list[Path]:
    """The rasters of a folder (sorted) or of a COCO json's ``images``."""
    if src.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(p for p in src.glob(pattern)
                      if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES)
    if not src.is_file():
        raise DatasetError(src, "no such folder or file")
    try:
        images = json.loads(src.read_text(encoding="utf-8"))["images"]
        base = Path(root) if root is not None else src.parent
        return [base / image["file_name"] for image in images]
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(src, f"not a COCO json with images[].file_name ({err})") from err


def band_statistics(files: list[Path], nodata: float | None = None,
                    bands: list[int] | None = None, progress: bool = True) -> dict:
    """The band statistics document of ``files`` (one image in memory at a time)."""
    acc = BandStatsAccumulator(nodata)
    for path in tqdm(files, desc="band stats", unit="img", disable=not progress):
        acc.update(select_bands(read_raster(path), bands, path), path)
    return acc.result(bands)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = Path(args.src)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / \
        "band_stats.json"
    try:
        files = raster_files(src, args.root, args.recursive)
        if not files:
            raise DatasetError(src, f"no raster ({', '.join(TIFF_SUFFIXES)}) found")
        stats = band_statistics(files, args.nodata, args.bands, not args.no_progress)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    atomic_write_json(out, stats, indent=1)
    print(f"{stats['files']} files, {stats['bands']} bands, {stats['count']} pixels -> {out}")
    for i, (m, s) in enumerate(zip(stats["mean"], stats["std"], strict=True)):
        print(f"  band {i}: mean {m:.6g}  std {s:.6g}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-band-stats`` and ``tools/data/band_stats.py``."""
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
