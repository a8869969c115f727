"""Export a fine-tuned full SAM3 image model as a sam3.pt-compatible file.

Thin wrapper of ``ds2d2_mm.cli.export_sam3_full`` (installed as the ``ds2d2-export-sam3-full``
command).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ds2d2_mm.cli.export_sam3_full import main, run  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(run())
