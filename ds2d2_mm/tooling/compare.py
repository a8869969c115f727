"""The comparison and ablation benchmark: every method on one schedule, several seeds, one table.

The teacher and its high-frequency amplifier are trained once; then every selected row (the
student baseline, DS2D2, each comparison method, each ablation) trains once per seed on the
baseline's schedule, its student is exported and scored on the held-out test split with the plain
student config. The table gives per row: seeds, AP, AP50 and AP_small (mean and standard deviation
over seeds), the trainable parameters the method adds to the student, and the median training
step time relative to the baseline of the same seed, measured in the same run; and the difference
of each row's mean AP from DS2D2's, flagged when it exceeds two standard errors of the difference.
The added parameters are the elements the optimizer trained (its state in the checkpoint) minus
the baseline's.

Each run is an ordinary ``python -m ds2d2_mm.cli.train`` / ``test`` command in its own work dir
(``<work_root>/seed<k>/<config>``), with its output in ``<work dir>/run.log``; finished runs and
scores are reused by a second call. Several runs go side by side with ``jobs`` (one thread each).
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..apis.export_student import export_student
from ..utils.errors import StageError
from .pipeline import Pipeline, Preset, data_root_options
from .report import load_scalars
from .runs import REPO, RunResult

__all__ = ["COMPARE_PRESETS", "CompareBench", "ComparePreset", "Row", "RowResult",
           "difference", "format_table", "summarise", "trainable_elements"]

#: Metric keys of mmdet's CocoMetric, as the table's columns.
METRICS = {"AP": "coco/bbox_mAP", "AP50": "coco/bbox_mAP_50", "APs": "coco/bbox_mAP_s"}


@dataclass(frozen=True)
class Row:
    """One line of the table: a name, its config, and its group."""

    name: str
    config: str
    group: str  # 'baseline', 'ds2d2', 'method' or 'ablation'


@dataclass(frozen=True)
class ComparePreset:
    """Teacher, amplifier and rows of one benchmark (configs below the shipped ``configs/``)."""

    teacher: str
    amplifier: str
    rows: tuple[Row, ...]
    work_root: str
    test_ann: str  # the held-out split's annotation file, relative to the data root
    synthetic_data: str | None = None


def _bench(name: str) -> str:
    return f"configs/demo/bench/{name}.py"


COMPARE_PRESETS: dict[str, ComparePreset] = {
    "demo": ComparePreset(
        teacher=_bench("teacher"),
        amplifier=_bench("hfamp"),
        rows=(
            Row("baseline", _bench("baseline"), "baseline"),
            Row("DS2D2", _bench("ds2d2"), "ds2d2"),
            Row("FitNet", _bench("fitnet"), "method"),
            Row("FGD", _bench("fgd"), "method"),
            Row("PKD", _bench("pkd"), "method"),
            Row("MGD", _bench("mgd"), "method"),
            Row("CrossKD", _bench("crosskd"), "method"),
            Row("prediction KD", _bench("predkd"), "method"),
            Row("DS2D2, FFT bands", _bench("ablation_fft"), "ablation"),
            Row("DS2D2, db2 wavelet", _bench("ablation_db2"), "ablation"),
            Row("DS2D2, sym4 wavelet", _bench("ablation_sym4"), "ablation"),
            Row("DS2D2, no DISW", _bench("ablation_no_disw"), "ablation"),
            Row("DS2D2, explicit only", _bench("ablation_explicit_only"), "ablation"),
            Row("DS2D2, implicit only", _bench("ablation_implicit_only"), "ablation"),
            Row("DS2D2, full amplifier only", _bench("ablation_full_amp_only"), "ablation"),
            Row("DS2D2, high amplifier only", _bench("ablation_high_amp_only"), "ablation"),
        ),
        work_root="work_dirs/compare",
        test_ann="annotations/test.json",
        synthetic_data="data/synthetic_aerial"),
}


@dataclass
class RowResult:
    """One trained row for one seed."""

    row: Row
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    trainable: int = 0  # elements the optimizer trained
    extra_params: int = 0  # trainable minus the baseline's of the same seed
    step_time: float | None = None  # median seconds per training iteration
    train_seconds: float | None = None


def median_step_time(work_dir: Path) -> float | None:
    """Median of mmengine's logged iteration times (``time``) after the first 10% of steps."""
    records = [r for r in load_scalars(work_dir) if isinstance(r.get("time"), (int, float))]
    if not records:
        return None
    return float(statistics.median(r["time"] for r in records[len(records) // 10:]))


def trainable_elements(checkpoint: Path) -> int:
    """Elements the optimizer trained, from the checkpoint's optimizer state: per parameter the
    largest tensor of its state (``exp_avg`` of Adam, ``momentum_buffer`` of SGD), so buffers
    (wavelet filters, checksums) and frozen parts never count.

    Raises:
        ValueError: the checkpoint has no optimizer state, naming it.
    """
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt.get("optimizer", {}).get("state")
    if not state:
        raise ValueError(f"{checkpoint}: no optimizer state to count trainable elements from")
    return sum(max((t.numel() for t in entry.values() if torch.is_tensor(t)), default=0)
               for entry in state.values())


def _reads_amplifier(config: str) -> bool:
    """Whether a distiller config uses the amplifier stage's checkpoint (high amplifier on)."""
    from mmengine.config import Config

    from ..utils.paths import shipped_config

    model = Config.fromfile(str(shipped_config(config))).model
    weights = model.get("distill_cfg", {}).get("amplifiers", {})
    return model.get("amplifier_config") is not None and weights.get("high", 1.0) > 0


class _Job(Pipeline):
    """A pipeline whose commands write to a log file and run with the given thread count."""

    def __init__(self, *args, log_file: Path, threads: int | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log_file = log_file
        self.threads = threads

    def log(self, msg: str) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "a", encoding="utf-8") as f:
            f.write(f"[compare] {msg}\n")

    def run_cmd(self, cmd: list[str]) -> None:
        self.log("$ " + shlex.join(cmd))
        env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        if self.threads is not None:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        with open(self.log_file, "a", encoding="utf-8") as out:
            proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise StageError(f"command failed with exit code {proc.returncode} (its output: "
                             f"{self.log_file}): {shlex.join(cmd)}")


class CompareBench:
    """Runs a :class:`ComparePreset`.

    Args:
        preset: The benchmark.
        seeds: Seeds of every row (``randomness.seed``).
        rows: Names of the rows to run (default all); the baseline and DS2D2 always run.
        jobs: Runs side by side (each with ``cpu_count // jobs`` threads).
        work_root: Where the work dirs, ``compare.md`` and ``compare.json`` go.
        extra_options: ``--cfg-options`` added to every command (e.g. a shorter schedule).
        synthetic: Generator arguments of the built-in data (num_train, num_val, num_test, ...).
        python: Interpreter that runs the tools.
        data_root: Where the built-in data goes (default the preset's folder).
    """

    def __init__(self, preset: ComparePreset, seeds: Sequence[int] = (0, 1, 2),
                 rows: Sequence[str] | None = None, jobs: int = 1,
                 work_root: str | Path | None = None, extra_options: Sequence[str] = (),
                 synthetic: dict | None = None, python: str | None = None,
                 data_root: str | Path | None = None) -> None:
        self.preset = preset
        self.seeds = list(seeds)
        known = {r.name: r for r in preset.rows}
        if rows is not None:
            unknown = sorted(set(rows) - set(known))
            if unknown:
                raise ValueError(f"unknown rows {unknown}; known: {sorted(known)}")
        chosen = set(rows or known) | {r.name for r in preset.rows if r.group in
                                       ("baseline", "ds2d2")}
        self.rows = [r for r in preset.rows if r.name in chosen]
        self.jobs = max(1, int(jobs))
        self.work_root = Path(work_root or preset.work_root).resolve()
        self.extra = list(extra_options)
        self.synthetic = dict(synthetic or {})
        self.python = python
        self.data_root = None
        if preset.synthetic_data:
            self.data_root = Path(data_root or preset.synthetic_data).resolve()
        self.t0 = time.time()
        self._lock = threading.Lock()
        self._active: dict[str, Path] = {}
        self._durations: list[float] = []
        self._done = 0

    # -- progress --------------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        with self._lock:
            print(f"[compare {time.time() - self.t0:7.0f}s] {msg}", flush=True)

    @staticmethod
    def _epoch(log_file: Path) -> str:
        """'epoch e/E' of the newest training line of a run's log, if any."""
        try:
            tail = log_file.read_bytes()[-20000:].decode("utf-8", "replace")
        except OSError:
            return "starting"
        found = re.findall(r"Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]", tail)
        if not found:
            return "evaluating" if "Epoch(test)" in tail else "starting"
        epoch, it, total = found[-1]
        return f"epoch {epoch}, iter {it}/{total}"

    def _monitor(self, total: int, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            with self._lock:
                active = dict(self._active)
                done, durations = self._done, list(self._durations)
            left = total - done
            eta = (f"~{statistics.mean(durations) * left / self.jobs / 60:.0f} min left"
                   if durations else "time left: after the first run")
            runs = "; ".join(f"{name}: {self._epoch(log)}" for name, log in active.items())
            self.say(f"{done}/{total} runs done, {eta} | {runs}")

    # -- runs ------------------------------------------------------------------------------------
    def _job(self, seed_dir: Path, name: str) -> _Job:
        cpus = os.cpu_count() or 1
        threads = max(1, cpus // self.jobs) if self.jobs > 1 else None
        job = _Job(Preset(teacher="", amplifier="", baseline="", distill="",
                          work_root=str(seed_dir)),
                   work_root=seed_dir, extra_options=self.extra,
                   log_file=seed_dir / "logs" / f"{name}.log", threads=threads)
        if self.python:
            job.python = self.python
        if self.data_root is not None:
            job.extra = data_root_options(self.data_root) + job.extra
        return job

    def _test_options(self) -> list[str]:
        if self.data_root is None:
            return []
        root = f"{self.data_root}/"
        return [f"test_dataloader.dataset.ann_file={self.preset.test_ann}",
                f"test_evaluator.ann_file={root}{self.preset.test_ann}"]

    def frozen_parts(self) -> tuple[RunResult, RunResult]:
        """Teacher and amplifier (seed 0), trained once."""
        root = self.work_root / "frozen"
        teacher = self._job(root, "teacher").train("teacher", self.preset.teacher)
        amp = self._job(root, "amplifier").train(
            "amplifier", self.preset.amplifier, [f"model.teacher_ckpt={teacher.checkpoint}"])
        return teacher, amp

    def run_row(self, row: Row, seed: int, teacher: RunResult, amp: RunResult) -> RowResult:
        """Train (or reuse) one row for one seed and score its student on the test split."""
        seed_dir = self.work_root / f"seed{seed}"
        label = f"{row.name} (seed {seed})"
        job = self._job(seed_dir, Path(row.config).stem)
        with self._lock:
            self._active[label] = job.log_file
        start = time.time()
        try:
            opts = [f"randomness.seed={seed}"]
            if row.group != "baseline":
                opts += [f"model.teacher_ckpt={teacher.checkpoint}"]
                if _reads_amplifier(row.config):
                    opts += [f"model.amplifier_ckpt={amp.checkpoint}"]
            run = job.train(label, row.config, opts)
            result = RowResult(row=row, seed=seed, trainable=trainable_elements(run.checkpoint),
                               step_time=median_step_time(run.work_dir),
                               train_seconds=run.train_seconds)
            scored = run
            if row.group != "baseline":  # the student alone, as exported, in the plain config
                student = run.work_dir / "student.pth"
                stale = (not student.is_file()
                         or student.stat().st_mtime < run.checkpoint.stat().st_mtime)
                if stale:
                    export_student(str(run.checkpoint), str(student))
                scored = RunResult(name=label, config=self._baseline().config,
                                   work_dir=run.work_dir / "student_test", checkpoint=student)
                scored.work_dir.mkdir(parents=True, exist_ok=True)
            job.evaluate(scored, self._test_options())
            result.metrics = {k: float(scored.metrics.get(v, math.nan)) for k, v in METRICS.items()}
            return result
        finally:
            with self._lock:
                self._active.pop(label, None)
                self._durations.append(time.time() - start)
                self._done += 1

    def _baseline(self) -> Row:
        return next(r for r in self.rows if r.group == "baseline")

    def run(self, monitor_every: float = 30.0) -> list[RowResult]:
        """Everything; writes ``compare.json`` and ``compare.md`` and returns the results."""
        if self.data_root is not None:
            from .synthetic import ensure_synthetic_dataset

            self.say(f"data: built-in synthetic scenes in {self.data_root}")
            ensure_synthetic_dataset(self.data_root, **self.synthetic)
        self.say(f"teacher and amplifier (logs in {self.work_root / 'frozen' / 'logs'})")
        teacher, amp = self.frozen_parts()
        tasks = [(row, seed) for seed in self.seeds for row in self.rows]
        self.say(f"{len(tasks)} runs: {len(self.rows)} rows x {len(self.seeds)} seeds, "
                 f"{self.jobs} side by side")
        stop = threading.Event()
        watcher = threading.Thread(target=self._monitor, args=(len(tasks), stop, monitor_every),
                                   daemon=True)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                results = list(pool.map(lambda t: self.run_row(t[0], t[1], teacher, amp), tasks))
        finally:
            stop.set()
        base = {r.seed: r.trainable for r in results if r.row.group == "baseline"}
        for r in results:
            r.extra_params = r.trainable - base[r.seed]
        table = format_table(summarise(results), self.seeds)
        (self.work_root / "compare.json").write_text(json.dumps(
            [dict(row=r.row.name, group=r.row.group, config=r.row.config, seed=r.seed,
                  metrics=r.metrics, trainable=r.trainable, extra_params=r.extra_params,
                  step_time=r.step_time,
                  train_seconds=r.train_seconds) for r in results], indent=2))
        (self.work_root / "compare.md").write_text(table + "\n")
        self.say(f"table: {self.work_root / 'compare.md'}")
        print(table, flush=True)
        return results


# -- the table ----------------------------------------------------------------------------------
def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan)


def summarise(results: Sequence[RowResult]) -> list[dict]:
    """Per row (in first-seen order): seeds, mean and sd of each metric, extra parameters, step
    time relative to the baseline of the same seed (mean over seeds), per-seed AP values."""
    baseline_time = {r.seed: r.step_time for r in results if r.row.group == "baseline"}
    rows: dict[str, dict] = {}
    for r in results:
        entry = rows.setdefault(r.row.name, dict(name=r.row.name, group=r.row.group, seeds=[],
                                                 ap=[], metrics={k: [] for k in METRICS},
                                                 extra_params=r.extra_params, rel_time=[]))
        entry["seeds"].append(r.seed)
        for k in METRICS:
            entry["metrics"][k].append(r.metrics.get(k, math.nan))
        base = baseline_time.get(r.seed)
        if base and r.step_time:
            entry["rel_time"].append(r.step_time / base)
    out = []
    for entry in rows.values():
        entry["stats"] = {k: _mean_sd(v) for k, v in entry["metrics"].items()}
        entry["rel_time"] = statistics.mean(entry["rel_time"]) if entry["rel_time"] else math.nan
        out.append(entry)
    return out


def difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of ``a`` minus mean of ``b``, and the standard error of that difference
    ``sqrt(sd_a^2 / n_a + sd_b^2 / n_b)`` (NaN with fewer than 2 values on a side)."""
    ma, sa = _mean_sd(a)
    mb, sb = _mean_sd(b)
    na = len([v for v in a if not math.isnan(v)])
    nb = len([v for v in b if not math.isnan(v)])
    if na < 2 or nb < 2:
        return ma - mb, math.nan
    return ma - mb, math.sqrt(sa**2 / na + sb**2 / nb)


def _pm(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.1f}" + ("" if math.isnan(sd) else f" ± {100 * sd:.1f}")


def format_table(summary: Sequence[dict], seeds: Sequence[int]) -> str:
    """Markdown table: one line per row, and DS2D2's AP difference to every other row.

    ``vs DS2D2`` is the row's mean AP minus DS2D2's (points) with ``*`` when its magnitude
    exceeds two standard errors of the difference.
    """
    ds2d2 = next((e for e in summary if e["group"] == "ds2d2"), None)
    lines = [f"Seeds {', '.join(map(str, seeds))}; AP, AP50 and AP_small on the test split, "
             "mean ± sd over seeds (points); extra params: trainable elements the method adds "
             "to the student; step time: median training iteration time relative to the "
             "baseline of the same seed; vs DS2D2: mean AP difference, * beyond 2 standard "
             "errors.", "",
             "| method | group | seeds | AP | AP50 | AP_small | extra params | step time | "
             "vs DS2D2 (AP) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        stats = e["stats"]
        vs = ""
        if ds2d2 is not None and e is not ds2d2:
            diff, se = difference(e["metrics"]["AP"], ds2d2["metrics"]["AP"])
            star = "*" if not math.isnan(se) and abs(diff) > 2 * se else ""
            vs = f"{100 * diff:+.1f}{star}"
        rel = "-" if math.isnan(e["rel_time"]) else f"{e['rel_time']:.2f}x"
        lines.append(f"| {e['name']} | {e['group']} | {len(e['seeds'])} | "
                     f"{_pm(*stats['AP'])} | {_pm(*stats['AP50'])} | {_pm(*stats['APs'])} | "
                     f"{e['extra_params']:,} | {rel} | {vs} |")
    return "\n".join(lines)
