"""Export a fine-tuned SAM3 trunk back into a sam3.pt-compatible checkpoint.

Thin wrapper of ``ds2d2_mm.cli.export_sam3_trunk`` (installed as the ``ds2d2-export-sam3-trunk``
command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.export_sam3_trunk import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
