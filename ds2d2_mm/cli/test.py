"""Evaluate a checkpoint (mmdet or mmrotate config, DS2D2 distillers included).

    ds2d2-test CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--cfg-options ...]

The test split's dataset files (and a distiller's teacher and amplifier checkpoints) are checked
before the runner starts (``ds2d2_mm.apis.preflight``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mmengine.runner import Runner

from ds2d2_mm.apis.preflight import check_run_inputs
from ds2d2_mm.apis.runner import (
    check_checkpoint_fits,
    check_weight_files,
    command_parser,
    parse_command_line,
    prepare_config,
    run_tool,
    runner_from_cfg,
)
from ds2d2_mm.utils.errors import CheckpointError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the standard MM test tool."""
    p = command_parser("Test a detector with the ds2d2_mm plugin", "test config file path",
                       "the dir to save the evaluation metrics")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="dump raw predictions to this pickle file")
    p.add_argument("--metrics-json", help="also write the returned metrics to this json file")
    return parse_command_line(p, argv)


def build_runner(args: argparse.Namespace) -> Runner:
    """A runner that loads ``args.checkpoint`` and runs the test loop."""
    cfg = prepare_config(args)
    check_run_inputs(cfg, "test", args.config)
    if not os.path.isfile(args.checkpoint):
        raise CheckpointError(f"checkpoint not found: {args.checkpoint}")
    cfg.load_from = args.checkpoint
    check_weight_files(cfg.to_dict(), training=False)
    if args.out:
        from mmengine.evaluator import DumpResults

        runner_out = DumpResults(out_file_path=args.out)
    runner = runner_from_cfg(cfg)
    check_checkpoint_fits(runner.model, args.checkpoint, "checkpoint")
    if args.out:
        runner.test_evaluator.metrics.append(runner_out)
    return runner


def main(argv: list[str] | None = None) -> dict:
    """Build the runner and test; returns the metrics."""
    args = parse_args(argv)
    metrics = build_runner(args).test()
    if args.metrics_json:
        Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics_json).write_text(json.dumps(metrics, indent=2, default=float))
    return metrics


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-test`` and ``tools/test.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
