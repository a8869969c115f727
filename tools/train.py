"""Train a detector (an mmdet or mmrotate config, DS2D2 distillers included).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from ds2d2_mm.runner_utils import (  # noqa: E402
    add_launch_args,
    check_weight_files,
    parse_launch_args,
    prepare_config,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line of the standard MM train tool."""
    p = argparse.ArgumentParser(description="Train a detector with the ds2d2_mm plugin")
    p.add_argument("config", help="train config file path")
    p.add_argument("--work-dir", help="the dir to save logs and models")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision (fp16)")
    p.add_argument("--auto-scale-lr", action="store_true", help="scale the lr by batch size")
    p.add_argument("--resume", nargs="?", type=str, const="auto",
                   help="resume from CKPT, or from the latest checkpoint in the work dir")
    add_launch_args(p)
    return parse_launch_args(p, argv)


def build_runner(args: argparse.Namespace) -> Runner:
    """The configured runner; path checks and the scope set-up happen first."""
    cfg = prepare_config(args)
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            raise KeyError(f"{args.config}: --auto-scale-lr needs auto_scale_lr.base_batch_size")
        cfg.auto_scale_lr.enable = True
    skip: tuple[str, ...] = ()
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    check_weight_files(cfg.to_dict(), skip)
    return Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)


def main(argv: list[str] | None = None) -> None:
    """Build the runner and train."""
    build_runner(parse_args(argv)).train()


if __name__ == "__main__":
    main()
