"""Run the DS2D2 recipe end to end: teacher -> amplifier -> distilled student (+ baseline),

Thin wrapper of ``ds2d2_mm.cli.pipeline`` (installed as the ``ds2d2-pipeline`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.pipeline import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
