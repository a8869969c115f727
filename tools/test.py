"""Evaluate a checkpoint (mmdet or mmrotate config, DS2D2 distillers included).

Thin wrapper of ``ds2d2_mm.cli.test`` (installed as the ``ds2d2-test`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.test import build_runner, main, parse_args, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
