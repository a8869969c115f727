"""Per-band mean and std of multi-band rasters (TIFF / GeoTIFF), streamed one file at a time.

Thin wrapper of ``ds2d2_mm.cli.band_stats`` (installed as the ``ds2d2-band-stats`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from ds2d2_mm.cli.band_stats import main, parse_args, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
