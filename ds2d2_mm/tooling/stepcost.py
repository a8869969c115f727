"""The ``stepcost`` section: the distillation step against its FLOP floor, in interleaved rounds.

Usage (``tools/benchmark.py``, ``ds2d2-benchmark``)::

    python tools/benchmark.py --sections stepcost [--detector retina,faster_rcnn] [--size 512]
        [--batch 2] [--threads 1] [--rounds 5] [--boxes 60] [--precisions fp32,amp]
        [--compile] [--frozen-fp16] [--compare-ref REV] [--device cuda] [--json out.json]

What is timed: one optimizer step (forward, backward, SGD step; under ``amp`` an fp16 autocast
forward and a scaled backward, as mmengine's AmpOptimWrapper) of each variant, at real widths
(RetinaNet or Faster R-CNN, ResNet-101 teacher -> ResNet-18 student, 256-channel FPN, mmdet's
heads, 20 classes, random init) on one random batch (``--batch`` images of ``--size`` px with
``--boxes`` boxes each, the same batch for every variant):

- ``student``: the R18 student trained alone;
- ``distilled``: the SpectralDistiller with the paper config's ``distill_cfg``
  (configs/ds2d2/<family>_r101_r18_dior.py): explicit stream and both amplifiers;
- ``explicit``: the explicit stream alone (amplifiers off);
- ``full-amp``, ``high-amp``: one amplifier alone (no explicit stream);
- ``distilled+compile``, ``distilled+fp16`` (``--compile``, ``--frozen-fp16``; CUDA):
  ``distill_cfg.accelerate``.

Interleaving: every variant of every source tree runs in its own worker process
(:mod:`ds2d2_mm.tooling.step_worker`), one thread by default, after ``--step-warmup`` untimed
steps. Each of the ``--rounds`` rounds times one step of every (source, variant, boxes,
precision) case, in an order rotated by one each round; a case's ratio in a round is its time
over the student's time of the same source, boxes, precision and round, so that a change of
machine load between rounds cancels. Rows report the median and the range over the rounds.
With ``--compare-ref REV`` the same cases also run from a scratch ``git worktree`` of ``REV``
under the system's temporary folder (removed at the end): before and after in one run.

FLOP floor (column ``floor``), counted by mmengine's ``FlopAnalyzer`` (one multiply-add = one
FLOP) on the same batch, and what the method cannot avoid:

    S = 3 * F(student forward)     the student's step: its forward and a backward of about
                                   two forwards (input and weight gradients)
    T = F(teacher backbone + neck) the teacher's forward (no backward)
    A_a = 3 * F(head_a on maps)    per amplifier a: one head forward on the teacher's maps, and
                                   on the student's maps a forward and an input-gradient
                                   backward (about two forwards; the head is frozen, so no
                                   weight gradients)
    floor = (S + T + sum over the variant's amplifiers of A_a) / S

F(student forward) is the R18 detector's forward: backbone, neck and head (RetinaNet), or
backbone, neck, RPN head and the RoI head on the RoIs its sampler draws (Faster R-CNN); an RoI
amplifier head is counted on those RoIs. The explicit stream (1x1 connector, Haar bands, DISW
maps), anchors, target assignment, box decoding and the loss arithmetic count zero: the floor
is the convolution and matrix work alone. ``over`` is ``ratio / floor - 1``.

Breakdown (section ``stepcost phases``): one step per variant of this tree under
:class:`~ds2d2_mm.utils.phases.PhaseRecorder`: the distiller's named phases (student pass,
teacher forward, teacher bands, explicit stream, each amplifier's inputs, head passes, targets
and anchors, box decoding, KD losses) and the step's forward, backward and optimizer step.
Peak memory (section ``stepcost memory``, CUDA only): see
:meth:`ds2d2_mm.tooling.step_worker.Worker.memory`.

JSON (``--json``): rewritten through the atomic writer after every round, so that an interrupted
run keeps the rounds it finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from ..utils.io import atomic_write_text

Row = dict[str, Any]

WORKER = Path(__file__).resolve().with_name("step_worker.py")
#: Defaults of the section; and with --small (tiny widths, one round, no warm-up).
DEFAULTS = dict(size=512, batch=2, threads=1, rounds=5, boxes="60", step_warmup=1,
                detector="retina,faster_rcnn", widths="real")
SMALL = dict(size=128, rounds=1, step_warmup=0, widths="tiny")
BASE_VARIANTS = ("student", "distilled", "explicit", "full-amp", "high-amp")
#: Amplifiers each variant runs (for its floor).
VARIANT_AMPLIFIERS = {"student": (), "distilled": ("full", "high"), "explicit": (),
                      "full-amp": ("full",), "high-amp": ("high",),
                      "distilled+compile": ("full", "high"), "distilled+fp16": ("full", "high")}
#: Variants that need this tree (distill_cfg.accelerate) and a CUDA device.
GPU_VARIANTS = ("distilled+compile", "distilled+fp16")
DETECTORS = ("retina", "faster_rcnn")
PRECISIONS = ("fp32", "amp")
#: Student step FLOPs per student forward (forward plus a backward of about two forwards).
STEP_FORWARDS = 3
#: Amplifier FLOPs per head forward (teacher side one, student side forward and input grad).
AMPLIFIER_FORWARDS = 3
GFLOP = 1e9
MS = 1000.0
HERE = "this tree"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The section's options (defaults in :data:`DEFAULTS`, applied by :func:`resolve`)."""
    group = parser.add_argument_group("stepcost section")
    group.add_argument("--detector", default=None,
                       help=f"comma-separated detectors from {DETECTORS} (default: both)")
    group.add_argument("--size", type=int, default=None, help="input side in px (default 512)")
    group.add_argument("--batch", type=int, default=None, help="images per batch (default 2)")
    group.add_argument("--rounds", type=int, default=None,
                       help="interleaved rounds; median and range over them (default 5)")
    group.add_argument("--boxes", default=None,
                       help="comma-separated boxes per image, e.g. 60,500,2000 (default 60)")
    group.add_argument("--precisions", default=None,
                       help="comma-separated from fp32, amp (default fp32; amp with --amp)")
    group.add_argument("--variants", default=None,
                       help=f"comma-separated from {', '.join(VARIANT_AMPLIFIERS)} "
                            f"(default: {', '.join(BASE_VARIANTS)} and the GPU ones asked for)")
    group.add_argument("--compile", action="store_true",
                       help="add distilled+compile (distill_cfg.accelerate.compile; CUDA)")
    group.add_argument("--frozen-fp16", action="store_true",
                       help="add distilled+fp16 (distill_cfg.accelerate.frozen_fp16; CUDA)")
    group.add_argument("--compare-ref", default=None, metavar="REV",
                       help="also measure the code of git revision REV (a scratch worktree)")
    group.add_argument("--step-warmup", type=int, default=None,
                       help="untimed steps per case before the rounds (default 1)")
    group.add_argument("--widths", choices=("real", "tiny"), default=None,
                       help="real: R101 -> R18, 256-ch FPN (default); tiny: for smoke tests")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def resolve(args: argparse.Namespace) -> dict:
    """The section's settings from ``args`` (defaults filled in, values checked).

    Raises:
        ConfigError: an unknown detector, variant or precision, a GPU variant on a CPU device, a
            non-positive count; naming the option and the value.
    """
    cfg = dict(DEFAULTS)
    if args.small:
        cfg.update(SMALL)
    for key in ("size", "batch", "rounds", "boxes", "step_warmup", "detector", "widths"):
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    cfg["threads"] = args.threads if args.threads is not None else DEFAULTS["threads"]
    cfg["detectors"] = _csv(cfg.pop("detector"))
    cfg["boxes"] = [int(b) for b in _csv(cfg["boxes"])]
    precisions = args.precisions or ("amp" if args.amp else "fp32")
    cfg["precisions"] = _csv(precisions)
    variants = _csv(args.variants) if args.variants else list(BASE_VARIANTS)
    if args.compile and "distilled+compile" not in variants:
        variants.append("distilled+compile")
    if args.frozen_fp16 and "distilled+fp16" not in variants:
        variants.append("distilled+fp16")
    if "student" not in variants:
        variants.insert(0, "student")  # every ratio is over the student's step
    cfg["variants"] = variants
    for key, values, known in (("--detector", cfg["detectors"], DETECTORS),
                               ("--precisions", cfg["precisions"], PRECISIONS),
                               ("--variants", variants, tuple(VARIANT_AMPLIFIERS))):
        bad = [v for v in values if v not in known]
        if bad or not values:
            raise ConfigError(f"{key}: unknown {bad or values}; choose from {', '.join(known)}")
    cuda = args.device.startswith("cuda")
    if not cuda and (set(variants) & set(GPU_VARIANTS) or "amp" in cfg["precisions"]):
        asked = sorted(set(variants) & set(GPU_VARIANTS)) + (
            ["amp"] if "amp" in cfg["precisions"] else [])
        raise ConfigError(f"{asked} are GPU options (distill_cfg.accelerate, fp16 autocast) "
                          f"and --device is {args.device!r}; use --device cuda or leave them out")
    for key in ("size", "batch", "rounds", "threads"):
        if int(cfg[key]) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {cfg[key]}")
    if any(b < 1 for b in cfg["boxes"]) or int(cfg["step_warmup"]) < 0:
        raise ConfigError(f"--boxes must be >= 1 and --step-warmup >= 0, got "
                          f"{cfg['boxes']} and {cfg['step_warmup']}")
    cfg["device"] = args.device
    cfg["compare_ref"] = args.compare_ref
    return cfg


# ---------------------------------------------------------------------------------------------
# Source trees and workers
# ---------------------------------------------------------------------------------------------


def repo_root() -> Path:
    """The checkout this package runs from."""
    return Path(__file__).resolve().parents[2]


def _git(*cmd: str, cwd: Path) -> str:
    out = subprocess.run(["git", *cmd], cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise ConfigError(f"git {' '.join(cmd)} failed in {cwd}: {out.stderr.strip()}")
    return out.stdout.strip()


@contextlib.contextmanager
def ref_tree(rev: str) -> Iterator[tuple[str, Path]]:
    """``(label, path)`` of a scratch ``git worktree`` of ``rev`` (removed on exit).

    Raises:
        ConfigError: not a git checkout, or ``rev`` is not a revision of it.
    """
    root = repo_root()
    try:
        sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}", cwd=root)
    except ConfigError as err:
        raise ConfigError(f"--compare-ref {rev!r}: not a revision of the checkout at {root} "
                          f"({err})") from None
    path = Path(tempfile.mkdtemp(prefix=f"ds2d2-ref-{sha[:8]}-"))
    _git("worktree", "add", "--detach", str(path), sha, cwd=root)
    try:
        yield f"ref {rev} ({sha[:8]})", path
    finally:
        _git("worktree", "remove", "--force", str(path), cwd=root)


@dataclass
class Source:
    """A source tree whose ``ds2d2_mm`` is measured."""

    label: str
    root: Path


class WorkerProcess:
    """A :mod:`~ds2d2_mm.tooling.step_worker` process and its command channel."""

    def __init__(self, source: Source, spec: dict) -> None:
        self.source = source
        self.log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, PYTHONPATH=str(source.root),
                   OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--root", str(source.root), "--spec", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.ready = self._answer()

    def _answer(self) -> dict:
        from .step_worker import MARK

        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                answer = json.loads(line[len(MARK):])
                if "error" in answer:
                    raise RuntimeError(f"stepcost worker ({self.source.label}, "
                                       f"{self.source.root}): {answer['error']}\n"
                                       f"{answer.get('trace', '')}")
                return answer
        self.log.seek(0)
        tail = self.log.read()[-3000:]
        raise RuntimeError(f"stepcost worker ({self.source.label}) exited "
                           f"(code {self.proc.wait()}):\n{tail}")

    def ask(self, **cmd: Any) -> dict:
        """Send one command, return its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# Floors and summaries
# ---------------------------------------------------------------------------------------------


def floors(flops: dict) -> dict[str, float]:
    """The floor of every variant from the worker's FLOP counts (module docstring)."""
    step = STEP_FORWARDS * flops["student_forward"]
    teacher = flops["teacher_backbone_neck"]
    heads = flops["amplifier_head"]
    out = {}
    for variant, amps in VARIANT_AMPLIFIERS.items():
        if variant == "student":
            out[variant] = 1.0
            continue
        extra = teacher + sum(AMPLIFIER_FORWARDS * heads[a] for a in amps if a in heads)
        out[variant] = (step + extra) / step
    return out


def summary_rows(detector: str, cfg: dict, times: dict, floor: dict[str, float]) -> list[Row]:
    """One row per timed case: median and range of its step time and of its ratio to the
    student's step in the same round."""
    rows = []
    for (source, variant, boxes, precision), ts in times.items():
        student = times.get((source, "student", boxes, precision), [])
        n = min(len(ts), len(student))
        if n == 0:
            continue
        ratios = [t / s for t, s in zip(ts[:n], student[:n], strict=True)]
        ratio = statistics.median(ratios)
        rows.append({
            "section": "stepcost", "detector": detector, "source": source, "variant": variant,
            "boxes/img": boxes, "precision": precision,
            "input": f"{cfg['batch']}x{cfg['size']}px", "rounds": n,
            "step_s": statistics.median(ts[:n]), "step_min_s": min(ts[:n]),
            "step_max_s": max(ts[:n]), "ratio": ratio, "ratio_min": min(ratios),
            "ratio_max": max(ratios), "floor": floor[variant],
            "over": ratio / floor[variant] - 1.0,
        })
    return rows


def flop_row(detector: str, flops: dict, floor: dict[str, float],
             variants: Sequence[str]) -> Row:
    """The FLOP counts (GFLOP) and each variant's floor."""
    row: Row = {"section": "stepcost flops", "detector": detector,
                "student_fwd_gflop": flops["student_forward"] / GFLOP,
                "teacher_gflop": flops["teacher_backbone_neck"] / GFLOP}
    for name, value in flops["amplifier_head"].items():
        row[f"{name}_head_gflop"] = value / GFLOP
    if flops.get("rois") is not None:
        row["rois"] = flops["rois"]
    row.update({f"floor {v}": f for v, f in floor.items() if v != "student" and v in variants})
    return row


def phase_rows(detector: str, variant: str, phases: dict[str, float], cfg: dict) -> list[Row]:
    """Rows of one recorded step: each phase's ms and its share of the whole step."""
    whole = phases.get("whole step", 0.0) or 1.0
    return [{"section": "stepcost phases", "detector": detector, "variant": variant,
             "boxes/img": cfg["boxes"][0], "phase": name, "ms": seconds * MS,
             "share": seconds / whole} for name, seconds in phases.items()]


class JsonSink:
    """Writes the rows so far (and the run's settings) atomically after every update."""

    def __init__(self, path: Path | None, meta: dict, earlier: Sequence[Row]) -> None:
        self.path, self.meta, self.earlier = path, meta, list(earlier)

    def write(self, rows: Sequence[Row], done: bool = False) -> None:
        if self.path is None:
            return
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        payload = {"meta": {**self.meta, "complete": done, "loadavg_1_5_15_min_now": load},
                   "rows": [*self.earlier, *rows]}
        atomic_write_text(self.path, json.dumps(payload, indent=2) + "\n")


def _progress(message: str, start: float) -> None:
    minutes, seconds = divmod(int(time.perf_counter() - start), 60)
    print(f"[stepcost {minutes:d}m{seconds:02d}s] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The section
# ---------------------------------------------------------------------------------------------


def run_detector(detector: str, cfg: dict, sources: list[Source], sink: JsonSink,
                 done_rows: list[Row], start: float) -> list[Row]:
    """Every round of one detector family; returns its rows."""
    workers: dict[str, WorkerProcess] = {}
    try:
        for src in sources:
            variants = [v for v in cfg["variants"]
                        if src.label == HERE or v not in GPU_VARIANTS]
            spec = dict(detector=detector, widths=cfg["widths"], variants=variants,
                        device=cfg["device"], threads=cfg["threads"], size=cfg["size"],
                        batch=cfg["batch"], boxes=cfg["boxes"])
            _progress(f"{detector}: building {', '.join(variants)} from {src.label}", start)
            workers[src.label] = WorkerProcess(src, spec)
        here = workers[HERE]
        flops = here.ask(cmd="flops")["flops"]
        floor = floors(flops)
        rows = [flop_row(detector, flops, floor, cfg["variants"])]
        cases = [(label, v, b, p) for label, w in workers.items() for v in w.ready["variants"]
                 for b in cfg["boxes"] for p in cfg["precisions"]]
        for label, variant, boxes, precision in cases:
            for _ in range(int(cfg["step_warmup"])):
                workers[label].ask(cmd="step", variant=variant, boxes=boxes,
                                   precision=precision)
        _progress(f"{detector}: warm-up done, {len(cases)} cases x {cfg['rounds']} rounds",
                  start)
        times: dict[tuple, list[float]] = {c: [] for c in cases}
        for r in range(int(cfg["rounds"])):
            shift = r % len(cases)
            for case in cases[shift:] + cases[:shift]:
                label, variant, boxes, precision = case
                t = workers[label].ask(cmd="step", variant=variant, boxes=boxes,
                                       precision=precision)["s"]
                times[case].append(t)
            rows_now = rows + summary_rows(detector, cfg, times, floor)
            sink.write(done_rows + rows_now)
            last = {c[1]: times[c][-1] for c in cases if c[0] == HERE}
            _progress(f"{detector}: round {r + 1}/{cfg['rounds']} ({HERE}: "
                      + ", ".join(f"{v} {t:.2f}s" for v, t in last.items()) + ")", start)
        rows = rows + summary_rows(detector, cfg, times, floor)
        for variant in here.ready["variants"]:
            phases = here.ask(cmd="phases", variant=variant, boxes=cfg["boxes"][0],
                              precision=cfg["precisions"][0])["phases"]
            if phases:
                rows += phase_rows(detector, variant, phases, cfg)
        if cfg["device"].startswith("cuda"):
            for label, variant, boxes, precision in cases:
                mem = workers[label].ask(cmd="memory", variant=variant, boxes=boxes,
                                         precision=precision)["memory"]
                if mem:
                    rows.append({"section": "stepcost memory", "detector": detector,
                                 "source": label, "variant": variant, "boxes/img": boxes,
                                 "precision": precision, **mem})
        sink.write(done_rows + rows)
        return rows
    finally:
        for worker in workers.values():
            worker.close()


def bench_stepcost(args: argparse.Namespace) -> list[Row]:
    """The section (see the module docstring); returns its rows."""
    cfg = resolve(args)
    meta = {"section": "stepcost", **{k: v for k, v in cfg.items()}, "python": sys.version,
            "loadavg_1_5_15_min_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "timing": "one optimizer step per case and round, wall clock, CUDA synchronised",
            "floor": "FlopAnalyzer: (3 F_student + F_teacher + sum_a 3 F_head_a) / 3 F_student"}
    sink = JsonSink(getattr(args, "json", None), meta, getattr(args, "rows_so_far", []))
    start = time.perf_counter()
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        sources = [Source(HERE, repo_root())]
        if cfg["compare_ref"]:
            label, path = stack.enter_context(ref_tree(cfg["compare_ref"]))
            sources.append(Source(label, path))
        for detector in cfg["detectors"]:
            rows += run_detector(detector, cfg, sources, sink, rows, start)
    sink.write(rows, done=True)
    _progress("done", start)
    return rows
