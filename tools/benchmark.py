"""Micro-benchmarks of the distillation step and its kernels.

Thin wrapper of ``ds2d2_mm.cli.benchmark`` (installed as the ``ds2d2-benchmark`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.benchmark import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
