"""Export the student of a DS2D2 distiller checkpoint for stock mmdet.

Thin wrapper of ``ds2d2_mm.cli.export_student`` (installed as the ``ds2d2-export-student`` command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.export_student import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
