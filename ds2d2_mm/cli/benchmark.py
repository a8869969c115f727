"""Micro-benchmarks of the distillation step and its kernels; prints one table per section.

    ds2d2-benchmark [--sections disw,haar,step,breakdown,stepcost] [--device cpu|cuda]
        [--small] [--amp] [--threads N] [--json out.json] [stepcost options]

The sections are in :mod:`ds2d2_mm.tooling.benchmark`; ``stepcost`` (the step against its FLOP
floor, interleaved rounds, ``--compare-ref``) in :mod:`ds2d2_mm.tooling.stepcost`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ds2d2_mm.tooling.benchmark import (
    BUDGET_S,
    DEFAULT_SECTIONS,
    SECTIONS,
    SMALL_BUDGET_S,
    SMALL_WARMUP,
    WARMUP,
    Row,
    format_table,
)
from ds2d2_mm.tooling.stepcost import add_arguments
from ds2d2_mm.tooling.stepcost import resolve as resolve_stepcost
from ds2d2_mm.utils.errors import ConfigError
from ds2d2_mm.utils.io import atomic_write_text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated sections to run, from: {', '.join(SECTIONS)} "
             f"(default: {','.join(DEFAULT_SECTIONS)})",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--small", action="store_true",
                        help="tiny sizes, one timed call (smoke run)")
    parser.add_argument("--amp", action="store_true",
                        help="step and breakdown sections under fp16 autocast (CUDA)")
    parser.add_argument("--json", type=Path, default=None, help="write all rows to this file")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's own)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per timing")
    parser.add_argument(
        "--budget-s", type=float, default=None,
        help="timed seconds per timing (blocked_autorange's min_run_time; 0: one call)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.section_list if s not in SECTIONS]
    if unknown or not args.section_list:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here; use --device cpu")
    defaults = (SMALL_WARMUP, SMALL_BUDGET_S) if args.small else (WARMUP, BUDGET_S)
    for name, default in zip(("warmup", "budget_s"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Runs the selected sections, prints their tables, writes JSON; returns all rows."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows: list[Row] = []
    for name in args.section_list:
        args.rows_so_far = list(rows)
        section_rows = SECTIONS[name](args)
        print(f"\n== {name} ({args.device}{', small' if args.small else ''}) ==")
        tables: dict[str, list[Row]] = {}
        for row in section_rows:
            tables.setdefault(row.get("section", name), []).append(row)
        for table, table_rows in tables.items():
            if table != name:
                print(f"\n-- {table} --")
            print(format_table(table_rows))
        rows.extend(section_rows)
    if args.json is not None:
        meta = {
            "device": args.device,
            "device_name": (
                torch.cuda.get_device_name(torch.device(args.device))
                if torch.device(args.device).type == "cuda"
                else "cpu"
            ),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "small": args.small,
            "sections": args.section_list,
            "timing": "torch.utils.benchmark.Timer.blocked_autorange, median per call",
            "warmup": args.warmup,
            "budget_s": args.budget_s,
        }
        if "stepcost" in args.section_list:
            meta["stepcost"] = resolve_stepcost(args)
            meta["stepcost_timing"] = ("one optimizer step per case and round, interleaved; "
                                       "median and range over the rounds")
            meta["loadavg_1_5_15_min_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        atomic_write_text(args.json, json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return rows


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-benchmark`` and ``tools/benchmark.py``."""
    try:
        main(argv)
    except ConfigError as err:
        print(f"ds2d2-benchmark: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
