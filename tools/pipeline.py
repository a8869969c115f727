"""Run the DS2D2 recipe end to end: teacher -> amplifier -> distilled student (+ baseline),
evaluation, export and a report. Finished stages are skipped; each stage's command is printed.

    python tools/pipeline.py --preset demo              # built-in data, CPU, ~15 minutes
    python tools/pipeline.py --preset retina_dior --gpus 8
    python tools/pipeline.py --preset retina_dior --gpus 4 --auto-scale-lr
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ds2d2_mm.pipeline import PRESETS, Pipeline  # noqa: E402
from ds2d2_mm.runner_utils import run_tool  # noqa: E402


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
    p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
    args = p.parse_args(argv)
    Pipeline(PRESETS[args.preset], args.work_root, args.gpus, args.cfg_options,
             auto_scale_lr=args.auto_scale_lr).run(report=not args.no_report)


if __name__ == "__main__":
    sys.exit(run_tool(main))
