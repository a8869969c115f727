"""Export the student of a DS2D2 distiller checkpoint for stock mmdet.

    ds2d2-export-student work_dirs/retina_r101_r18_dior/epoch_24.pth student.pth
    python tools/test.py configs/ds2d2/retina_r18_dior.py student.pth

A cross-modal student (distill_cfg.student_input='ir') is exported the same way and tested with
its own single-modality config, which reads that modality alone:

    python tools/test.py configs/multimodal/retina_r18_dronevehicle_ir.py student_ir.pth
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.apis.export_student import export_student
from ds2d2_mm.apis.runner import run_tool


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and export."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("checkpoint", help="SpectralDistiller checkpoint")
    p.add_argument("out", help="output file for the student alone")
    p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
    args = p.parse_args(argv)
    counts = export_student(args.checkpoint, args.out)
    print(f"wrote {args.out}: {counts['exported']} student tensors "
          f"({counts['dropped']} distillation-only tensors left out)")



def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-export-student`` and ``tools/export_student.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
