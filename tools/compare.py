"""Comparison and ablation benchmark: every method and ablation for several seeds, one table.

Thin wrapper of ``ds2d2_mm.cli.compare`` (installed as the ``ds2d2-compare`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.compare import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
