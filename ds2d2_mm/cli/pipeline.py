"""Run the DS2D2 recipe end to end: teacher -> amplifier -> distilled student (+ baseline),
evaluation, export and a report. Finished stages are skipped; each stage's command is printed.

    ds2d2-pipeline --preset demo              # built-in data, CPU, ~15 minutes
    ds2d2-pipeline --preset rgbn_demo         # the demo on 4-band rasters (R, G, B, NIR)
    ds2d2-pipeline --preset paired_demo       # RGB teacher -> infrared student (paired scenes)
    ds2d2-pipeline --preset retina_coco_multiband   # your multi-band COCO folder
    ds2d2-pipeline --preset retina_dior --gpus 8
    ds2d2-pipeline --preset retina_dior --gpus 4 --auto-scale-lr
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.apis.runner import run_tool
from ds2d2_mm.tooling.pipeline import PRESETS, Pipeline


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the pipeline."""
    p = argparse.ArgumentParser(description="DS2D2 three-stage pipeline")
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    p.add_argument("--work-root", help="folder of the stages' work dirs and the report")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per training stage (torchrun)")
    p.add_argument("--cfg-options", nargs="+", default=[],
                   help="key=value overrides added to every stage (e.g. train_cfg.max_epochs=1)")
    p.add_argument("--auto-scale-lr", action="store_true",
                   help="scale each stage's lr (given for a total batch of 16) to the run's batch")
    p.add_argument("--no-report", action="store_true", help="skip the report")
    p.add_argument("--no-deploy", action="store_true",
                   help="skip the deployment stage (ONNX, INT8, latency) of presets that have one")
    p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
    args = p.parse_args(argv)
    Pipeline(PRESETS[args.preset], args.work_root, args.gpus, args.cfg_options,
             auto_scale_lr=args.auto_scale_lr, deploy=not args.no_deploy).run(
                 report=not args.no_report)



def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-pipeline`` and ``tools/pipeline.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
