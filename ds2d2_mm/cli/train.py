"""Train a detector (an mmdet or mmrotate config, DS2D2 distillers included).

    ds2d2-train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
        [--accept-changed-checkpoints] [--cfg-options k=v ...] [--debug]

Before the runner starts it checks that the dataset files of the config and the teacher and
amplifier checkpoints of a distiller are there (one message naming the file and the command that
makes it: ``ds2d2_mm.apis.preflight``). Before the first iteration it checks every checkpoint
the config names (and fetches remote ImageNet / model-zoo weights into torch's hub cache), that
a file to resume from fits the model, and the distillation config; checkpoints are saved
atomically (SafeCheckpointHook). A known error is printed as one message with exit code 1
(--debug shows the traceback).
"""

from __future__ import annotations

import argparse
import sys

from mmengine.logging import print_log
from mmengine.runner import Runner

from ds2d2_mm.apis.preflight import check_run_inputs
from ds2d2_mm.apis.runner import (
    check_amp,
    check_checkpoint_fits,
    check_distill_config,
    check_weight_files,
    command_parser,
    make_runs_safe,
    parse_command_line,
    prepare_config,
    resume_checkpoint,
    run_tool,
    runner_from_cfg,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the standard MM train tool."""
    p = command_parser("Train a detector with the ds2d2_mm plugin", "train config file path",
                       "the dir to save logs and models")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision (fp16)")
    p.add_argument("--auto-scale-lr", action="store_true",
                   help="scale the lr from auto_scale_lr.base_batch_size to the run's batch")
    p.add_argument("--resume", nargs="?", type=str, const="auto",
                   help="resume from CKPT, or from the latest checkpoint in the work dir")
    p.add_argument("--accept-changed-checkpoints", action="store_true",
                   help="go on when a teacher or amplifier file differs from the one the "
                        "checkpoint being resumed (or the amplifier stage) was trained with")
    return parse_command_line(p, argv)


def build_runner(args: argparse.Namespace) -> Runner:
    """The configured runner; every check happens before training starts."""
    cfg = prepare_config(args)
    if args.amp:
        wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
        cfg.optim_wrapper.type = ("GuardedAmpOptimWrapper" if wrapper.startswith("Guarded")
                                  else "AmpOptimWrapper")
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            raise KeyError(f"{args.config}: --auto-scale-lr needs auto_scale_lr.base_batch_size")
        cfg.auto_scale_lr.enable = True
    if args.accept_changed_checkpoints and cfg.model.get("type") == "SpectralDistiller":
        cfg.model.setdefault("distill_cfg", {})["checkpoint_changes"] = "warn"
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    changes = make_runs_safe(cfg)
    check_distill_config(cfg)
    check_amp(cfg)
    check_run_inputs(cfg, "train", args.config)
    for change in changes:
        print_log(f"train: {change}", logger="current")
    check_weight_files(cfg.to_dict())
    runner = runner_from_cfg(cfg)
    resume = resume_checkpoint(cfg)
    if resume is not None:
        check_checkpoint_fits(runner.model, resume, "checkpoint to resume from")
    return runner


def main(argv: list[str] | None = None) -> None:
    """Build the runner and train."""
    build_runner(parse_args(argv)).train()


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-train`` and ``tools/train.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
