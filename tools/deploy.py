"""Ship a student: ONNX export, ONNX Runtime parity, INT8, AP and latency on CPU.

Thin wrapper of ``ds2d2_mm.cli.deploy`` (installed as the ``ds2d2-deploy`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.deploy import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
