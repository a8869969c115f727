"""Comparison and ablation benchmark: teacher and amplifier once, then every method and ablation
and the baseline for several seeds on one schedule, scored on the held-out test split; one table
(mean ± sd over seeds, extra parameters, step time relative to the baseline).

    ds2d2-compare --preset demo --seeds 0 1 2 --jobs 2      # built-in data, CPU
    ds2d2-compare --preset demo --rows FitNet CrossKD       # some rows (+ baseline and DS2D2)
"""

from __future__ import annotations

import argparse
import sys

from ds2d2_mm.apis.runner import run_tool
from ds2d2_mm.tooling.compare import COMPARE_PRESETS, CompareBench


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(COMPARE_PRESETS), default="demo")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rows", nargs="+", help="row names to run (default: all)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs side by side, each with cpu_count / jobs threads")
    p.add_argument("--work-root", help="folder of the work dirs and the table")
    p.add_argument("--cfg-options", nargs="+", default=[],
                   help="key=value overrides added to every run (e.g. a shorter schedule)")
    p.add_argument("--monitor-every", type=float, default=30.0,
                   help="seconds between progress lines")
    p.add_argument("--debug", action="store_true", help="show the traceback of a known error")
    args = p.parse_args(argv)
    bench = CompareBench(COMPARE_PRESETS[args.preset], seeds=args.seeds, rows=args.rows,
                         jobs=args.jobs, work_root=args.work_root, extra_options=args.cfg_options)
    bench.run(monitor_every=args.monitor_every)


def run(argv: list[str] | None = None) -> int:
    """Entry point of ``ds2d2-compare`` and ``tools/compare.py``."""
    return run_tool(main, argv)


if __name__ == "__main__":
    sys.exit(run())
