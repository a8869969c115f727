"""Splits DOTA v1.0 images and labels into overlapping patches (resumable, parallel).

Thin wrapper of ``ds2d2_mm.cli.split_dota`` (installed as the ``ds2d2-split-dota`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from ds2d2_mm.cli.split_dota import main, parse_args, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
