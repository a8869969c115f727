"""Micro-benchmarks of ds2d2_mm kernels.

Usage::

    python tools/benchmark.py --sections disw,haar --device cpu --json out.json [--small]

Each section is a function ``(args) -> list of row dicts`` registered in :data:`SECTIONS`; every
row carries ``section`` and ``case`` keys plus its measurements. The script prints one plain
text table per section and, with ``--json``, writes all rows (and the run's settings) to a file.
Timings use :func:`time_ms`: warm-up calls, then the median of repeated calls, synchronising
CUDA around each one.

Sections:

- ``disw``: DISW maps for the five FPN levels of an 800x800 input (strides 8 to 128), batch 2,
  at 50, 500 and 2000 boxes per image: vectorised ``disw_pyramid`` against the per-box loop
  ``disw_weights_reference``.
- ``haar``: forward + backward of the one-level Haar DWT at the five FPN level sizes of an
  800x800 input, batch 2, 256 channels: ``haar_dwt`` against ``pytorch_wavelets.DWTForward``.

``--small`` shrinks inputs and repetitions so that everything runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

Row = dict[str, Any]

#: FPN strides of levels P3 to P7.
FPN_STRIDES = (8, 16, 32, 64, 128)
#: Side of the (square) benchmark input, as in DIOR; and the side used with --small.
IMG_SIDE, SMALL_IMG_SIDE = 800, 128
BATCH = 2
#: Boxes per image for the DISW section (kept with --small: the loop is what gets slow).
DISW_BOX_COUNTS = (50, 500, 2000)
#: Box sides for the DISW section are log-uniform in [MIN_BOX_SIDE, MAX_BOX_FRACTION * side].
MIN_BOX_SIDE = 4.0
MAX_BOX_FRACTION = 0.4
#: Feature channels of the Haar section; and with --small.
HAAR_CHANNELS, SMALL_HAAR_CHANNELS = 256, 16
#: Repetition defaults: warm-up calls, timed calls, and a time budget per measurement (s).
WARMUP, REPS, BUDGET_S = 3, 20, 3.0
SMALL_WARMUP, SMALL_REPS, SMALL_BUDGET_S = 1, 1, 0.5
#: Timed calls are never fewer than this (nor than ``reps``), whatever the budget.
MIN_REPS = 3
SEED = 0
MS_PER_S = 1000.0


# ---------------------------------------------------------------------------------------------
# Common helpers
# ---------------------------------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(
    fn: Callable[[], object],
    device: torch.device,
    warmup: int = WARMUP,
    reps: int = REPS,
    budget_s: float = BUDGET_S,
) -> float:
    """Median wall time of ``fn()`` in milliseconds.

    Runs ``warmup`` untimed calls, then timed calls until ``reps`` are done or ``budget_s`` is
    spent (but at least ``min(MIN_REPS, reps)``), synchronising CUDA before and after each call.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < reps:
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
        if len(times) >= min(MIN_REPS, reps) and time.perf_counter() - start_all > budget_s:
            break
    return statistics.median(times) * MS_PER_S


def fpn_sizes(side: int) -> list[int]:
    """Side of each FPN level (P3..P7) of a ``side`` x ``side`` input: ceil(side / stride)."""
    return [math.ceil(side / stride) for stride in FPN_STRIDES]


def _timing_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"warmup": args.warmup, "reps": args.reps, "budget_s": args.budget_s}


def _speedup(baseline_ms: float, new_ms: float) -> float:
    return baseline_ms / new_ms if new_ms > 0 else math.inf


def format_table(rows: Sequence[Row]) -> str:
    """Plain text table of ``rows``, columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in body)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _random_boxes(num: int, side: int, gen: torch.Generator) -> torch.Tensor:
    """(num, 4) x1y1x2y2 boxes with log-uniform sides, clipped to the ``side`` x ``side`` image."""
    max_side = MAX_BOX_FRACTION * side
    log_wh = torch.rand(num, 2, generator=gen) * math.log(max_side / MIN_BOX_SIDE)
    wh = MIN_BOX_SIDE * torch.exp(log_wh)
    xy = torch.rand(num, 2, generator=gen) * side
    return torch.cat([xy, xy + wh], 1).clamp_(0, side)


def bench_disw(args: argparse.Namespace) -> list[Row]:
    """Vectorised ``disw_pyramid`` against the per-box loop reference, all five levels."""
    from ds2d2_mm.disw import disw_pyramid, disw_weights_reference

    device = torch.device(args.device)
    side = SMALL_IMG_SIDE if args.small else IMG_SIDE
    grids = [(s, s) for s in fpn_sizes(side)]
    gen = torch.Generator().manual_seed(SEED)
    rows = []
    for num in DISW_BOX_COUNTS:
        boxes = [_random_boxes(num, side, gen).to(device) for _ in range(BATCH)]

        def vectorised(boxes=boxes) -> object:
            return disw_pyramid(boxes, (side, side), grids)

        def loop(boxes=boxes) -> object:
            return [disw_weights_reference(boxes, (side, side), g) for g in grids]

        vec_ms = time_ms(vectorised, device, **_timing_kwargs(args))
        loop_ms = time_ms(loop, device, **_timing_kwargs(args))
        rows.append(
            {
                "section": "disw",
                "case": f"{num} boxes/img",
                "boxes_per_image": num,
                "input": f"{BATCH}x{side}x{side}",
                "levels": len(grids),
                "vectorised_ms": vec_ms,
                "loop_ms": loop_ms,
                "speedup": _speedup(loop_ms, vec_ms),
            }
        )
    return rows


def bench_haar(args: argparse.Namespace) -> list[Row]:
    """Forward + backward of ``haar_dwt`` against pytorch_wavelets, per FPN level and summed."""
    from pytorch_wavelets import DWTForward

    from ds2d2_mm.spectral import haar_dwt

    device = torch.device(args.device)
    side = SMALL_IMG_SIDE if args.small else IMG_SIDE
    channels = SMALL_HAAR_CHANNELS if args.small else HAAR_CHANNELS
    reference = DWTForward(J=1, wave="haar", mode="zero").to(device)
    gen = torch.Generator().manual_seed(SEED)
    rows, total_haar, total_ref = [], 0.0, 0.0
    for level, size in enumerate(fpn_sizes(side), start=3):
        x = torch.randn(BATCH, channels, size, size, generator=gen).to(device).requires_grad_()
        low, high = haar_dwt(x.detach())
        grad_low, grad_high = torch.randn_like(low), torch.randn_like(high)

        def run_haar(x=x, grad_low=grad_low, grad_high=grad_high) -> None:
            out_low, out_high = haar_dwt(x)
            torch.autograd.backward([out_low, out_high], [grad_low, grad_high])
            x.grad = None

        def run_ref(x=x, grad_low=grad_low, grad_high=grad_high) -> None:
            out_low, out_highs = reference(x)
            torch.autograd.backward([out_low, out_highs[0]], [grad_low, grad_high])
            x.grad = None

        haar_ms = time_ms(run_haar, device, **_timing_kwargs(args))
        ref_ms = time_ms(run_ref, device, **_timing_kwargs(args))
        total_haar += haar_ms
        total_ref += ref_ms
        rows.append(
            {
                "section": "haar",
                "case": f"P{level} {size}x{size}",
                "shape": f"{BATCH}x{channels}x{size}x{size}",
                "haar_ms": haar_ms,
                "pytorch_wavelets_ms": ref_ms,
                "speedup": _speedup(ref_ms, haar_ms),
            }
        )
    rows.append(
        {
            "section": "haar",
            "case": "sum",
            "shape": f"{len(rows)} levels",
            "haar_ms": total_haar,
            "pytorch_wavelets_ms": total_ref,
            "speedup": _speedup(total_ref, total_haar),
        }
    )
    return rows


#: Section name -> benchmark function (args) -> rows. New sections register here.
SECTIONS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "disw": bench_disw,
    "haar": bench_haar,
}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, from: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes / reps (smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="write all rows to this file")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's own)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per timing")
    parser.add_argument("--reps", type=int, default=None, help="timed calls per timing (max)")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="time budget per timing, in seconds"
    )
    args = parser.parse_args(argv)
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.section_list if s not in SECTIONS]
    if unknown or not args.section_list:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here; use --device cpu")
    defaults = (
        (SMALL_WARMUP, SMALL_REPS, SMALL_BUDGET_S) if args.small else (WARMUP, REPS, BUDGET_S)
    )
    for name, default in zip(("warmup", "reps", "budget_s"), defaults, strict=True):
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
        section_rows = SECTIONS[name](args)
        print(f"\n== {name} ({args.device}{', small' if args.small else ''}) ==")
        print(format_table(section_rows))
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
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    if importlib.util.find_spec("ds2d2_mm") is None:  # run from a checkout that is not installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
