"""Generates the built-in synthetic aerial dataset (COCO json + DOTA-style labels).

Thin wrapper of ``ds2d2_mm.cli.make_synthetic`` (installed as the ``ds2d2-make-synthetic`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from ds2d2_mm.cli.make_synthetic import main, parse_args, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
