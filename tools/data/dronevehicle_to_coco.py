"""Converts DroneVehicle (RGB + infrared pairs, official layout) to paired COCO json files.

Thin wrapper of ``ds2d2_mm.cli.dronevehicle_to_coco`` (installed as the
``ds2d2-dronevehicle-to-coco`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from ds2d2_mm.cli.dronevehicle_to_coco import main, parse_args, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
