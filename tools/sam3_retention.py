"""Retention check: does a fine-tuned SAM3 still compute what the original did?

Thin wrapper of ``ds2d2_mm.cli.sam3_retention`` (installed as the ``ds2d2-sam3-retention`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.sam3_retention import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
