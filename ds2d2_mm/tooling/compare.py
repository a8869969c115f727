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

The rows come from the bench folder itself: every config there declares, in a top-level
``bench_row``, its line of the table (``bench_row = dict(name='FGD', group='method', order=40)``;
rows sort by group, then ``order``) or its role (``bench_row = dict(role='teacher')`` or
``'amplifier'``). A new method is one config dropped into the folder. A row of another detector
family than the bench's baseline names the row it is measured against, ``baseline='<name>'``
(group ``'family'``): its exported student is scored in that row's config, and its step time and
extra parameters are relative to that row (a row whose ``baseline`` is its own name trains its
student alone, as the bench's baseline does). The declaration is read
from the file's own source with :mod:`ast` (nothing is executed or inherited); mmengine's
``Config`` keeps the key as a plain value and the runner never reads it.
"""

from __future__ import annotations

import ast
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
from functools import cached_property
from pathlib import Path

import torch

from ..apis.export_student import export_student
from ..utils.errors import ConfigError, StageError
from ..utils.paths import shipped_config
from .pipeline import Pipeline, Preset, data_root_options
from .report import load_scalars
from .runs import REPO, RunResult

__all__ = ["BENCH_ROW_KEY", "COMPARE_PRESETS", "GROUPS", "ROLES", "Bench", "CompareBench",
           "ComparePreset", "Row", "RowResult", "difference", "discover_bench", "format_table",
           "read_bench_row", "summarise", "trainable_elements"]

#: Metric keys of mmdet's CocoMetric, as the table's columns.
METRICS = {"AP": "coco/bbox_mAP", "AP50": "coco/bbox_mAP_50", "APs": "coco/bbox_mAP_s"}


#: The table's groups, in its order.
GROUPS = ("baseline", "ds2d2", "method", "ablation", "family")
#: Roles of the bench configs that are no row: the frozen parts every distilled row reads.
ROLES = ("teacher", "amplifier")
#: The top-level name under which a bench config declares its row or role.
BENCH_ROW_KEY = "bench_row"
_ROW_KEYS = ("name", "group", "order")
#: Optional key of a row: the name of the row it is measured against (default the baseline).
_BASELINE_KEY = "baseline"


@dataclass(frozen=True)
class Row:
    """One line of the table: a name, its config, and its group."""

    name: str
    config: str
    group: str  # one of GROUPS
    baseline: str | None = None  # the row it is measured against (None: the bench's baseline)

    @property
    def alone(self) -> bool:
        """Whether the row trains its student alone (no teacher, no export)."""
        return self.group == "baseline" or self.baseline == self.name


@dataclass(frozen=True)
class Bench:
    """What a bench folder declares: its frozen parts and its rows, in table order."""

    teacher: str
    amplifier: str
    rows: tuple[Row, ...]


def _literal(node: ast.expr, path: Path, key: str) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ConfigError(f"{path}: {key} must be a literal (a string or a number), got "
                          f"{ast.unparse(node)!r}") from None


def read_bench_row(path: str | os.PathLike) -> dict | None:
    """The ``bench_row`` that a config file assigns at its top level, read from its source.

    The value must be ``dict(key=literal, ...)`` or a ``{'key': literal}`` literal; the file is
    parsed, not executed, and its ``_base_`` files are not read.

    Returns:
        The declared keys and values, or ``None`` when the file assigns no ``bench_row``.

    Raises:
        ConfigError: the value is not such a dict, naming the file and the key.
    """
    path = Path(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    value = None
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == BENCH_ROW_KEY for t in targets):
            value = node.value
    if value is None:
        return None
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id == "dict" and not value.args
            and all(kw.arg is not None for kw in value.keywords)):
        return {kw.arg: _literal(kw.value, path, f"{BENCH_ROW_KEY}.{kw.arg}")
                for kw in value.keywords}
    if isinstance(value, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in value.keys):
        return {k.value: _literal(v, path, f"{BENCH_ROW_KEY}.{k.value}")
                for k, v in zip(value.keys, value.values, strict=True)}
    raise ConfigError(f"{path}: {BENCH_ROW_KEY} must be dict(name=..., group=..., order=...) or "
                      f"dict(role=...) with literal values, got {ast.unparse(value)!r}")


def _bench_entry(path: Path, declared: dict | None) -> tuple[str, int] | str:
    """A validated declaration: ``(group, order)`` of a row, or the role of a frozen part."""
    example = ("e.g. bench_row = dict(name='FGD', group='method', order=40), or "
               "bench_row = dict(role='teacher') for a frozen part")
    if declared is None:
        raise ConfigError(f"{path}: no top-level {BENCH_ROW_KEY}; every config of a bench folder "
                          f"declares its row of the table or its role, {example}")
    if "role" in declared:
        role = declared["role"]
        if role not in ROLES:
            raise ConfigError(f"{path}: {BENCH_ROW_KEY}.role must be one of {', '.join(ROLES)}, "
                              f"got {role!r}")
        extra = sorted(set(declared) - {"role"})
        if extra:
            raise ConfigError(f"{path}: {BENCH_ROW_KEY}.{extra[0]}: a config with a role is no "
                              "row of the table; give the role alone")
        return role
    unknown = sorted(set(declared) - {*_ROW_KEYS, _BASELINE_KEY})
    if unknown:
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.{unknown[0]} is not a key of a row; its keys "
                          f"are {', '.join(_ROW_KEYS)} (or role alone), {example}")
    missing = [key for key in _ROW_KEYS if key not in declared]
    if missing:
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.{missing[0]} is missing, {example}")
    name, group, order = (declared[key] for key in _ROW_KEYS)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.name must be a non-empty string, got "
                          f"{name!r}")
    if group not in GROUPS:
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.group must be one of {', '.join(GROUPS)}, "
                          f"got {group!r}")
    if isinstance(order, bool) or not isinstance(order, int):
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.order must be an integer, got {order!r}")
    baseline = declared.get(_BASELINE_KEY)
    if baseline is not None and (not isinstance(baseline, str) or group in ("baseline",
                                                                             "ds2d2")):
        raise ConfigError(f"{path}: {BENCH_ROW_KEY}.{_BASELINE_KEY} names another row by its "
                          "name (a string), in a row that is not the bench's baseline or DS2D2, "
                          f"got {baseline!r}")
    return group, order


def discover_bench(folder: str | os.PathLike) -> Bench:
    """The frozen parts and the rows that the configs of a bench folder declare.

    Args:
        folder: A folder below the shipped configs (``configs/demo/bench``), or an absolute one.
            The configs are named ``<folder>/<file>`` as given.

    Returns:
        The teacher, the amplifier and the rows, sorted by group (:data:`GROUPS`), then by
        ``order``, then by file name.

    Raises:
        ConfigError: a config declares no row or role or a malformed one, two rows share a
            name, or the folder lacks exactly one teacher, amplifier, baseline or DS2D2 row.
    """
    where = Path(folder)
    directory = where if where.is_absolute() else shipped_config(where.as_posix())
    files = sorted(directory.glob("*.py"))
    if not files:
        raise ConfigError(f"{directory}: no bench configs (*.py)")
    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    rows: list[tuple[int, int, str, Row]] = []
    named: dict[str, Path] = {}
    for path in files:
        declared = read_bench_row(path)
        entry = _bench_entry(path, declared)
        config = (where / path.name).as_posix()
        if isinstance(entry, str):
            roles[entry].append(config)
            continue
        group, order = entry
        name = declared["name"]
        if name in named:
            raise ConfigError(f"{path}: {BENCH_ROW_KEY}.name {name!r} is the name of "
                              f"{named[name]} too; give each row its own name")
        named[name] = path
        rows.append((GROUPS.index(group), order, path.name,
                     Row(name, config, group, declared.get(_BASELINE_KEY))))
    for role, configs in roles.items():
        if len(configs) != 1:
            raise ConfigError(f"{directory}: {len(configs)} configs declare "
                              f"{BENCH_ROW_KEY} = dict(role={role!r}) ({', '.join(configs)}); "
                              "a bench needs exactly one")
    for *_, row in rows:
        if row.baseline is not None and row.baseline not in named:
            raise ConfigError(f"{named[row.name]}: {BENCH_ROW_KEY}.{_BASELINE_KEY}="
                              f"{row.baseline!r} is no row of the bench; rows: "
                              f"{', '.join(sorted(named))}")
    for group in ("baseline", "ds2d2"):
        found = [r.config for *_, r in rows if r.group == group]
        if len(found) != 1:
            raise ConfigError(f"{directory}: {len(found)} rows of group {group!r} "
                              f"({', '.join(found)}); a bench needs exactly one")
    return Bench(teacher=roles["teacher"][0], amplifier=roles["amplifier"][0],
                 rows=tuple(row for *_, row in sorted(rows, key=lambda r: r[:3])))


@dataclass(frozen=True)
class ComparePreset:
    """A benchmark: the bench folder whose configs declare its rows (:func:`discover_bench`).

    ``teacher``, ``amplifier`` and ``rows`` are read from the folder on first use.
    """

    bench: str  # below the shipped configs (configs/...), or an absolute folder
    work_root: str
    test_ann: str  # the held-out split's annotation file, relative to the data root
    synthetic_data: str | None = None

    @cached_property
    def _declared(self) -> Bench:
        return discover_bench(self.bench)

    @property
    def teacher(self) -> str:
        return self._declared.teacher

    @property
    def amplifier(self) -> str:
        return self._declared.amplifier

    @property
    def rows(self) -> tuple[Row, ...]:
        return self._declared.rows


COMPARE_PRESETS: dict[str, ComparePreset] = {
    "demo": ComparePreset(
        bench="configs/demo/bench",
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
        chosen |= {known[n].baseline for n in chosen if known[n].baseline}  # their references
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
            if not row.alone:
                opts += [f"model.teacher_ckpt={teacher.checkpoint}"]
                if _reads_amplifier(row.config):
                    opts += [f"model.amplifier_ckpt={amp.checkpoint}"]
            run = job.train(label, row.config, opts)
            result = RowResult(row=row, seed=seed, trainable=trainable_elements(run.checkpoint),
                               step_time=median_step_time(run.work_dir),
                               train_seconds=run.train_seconds)
            scored = run
            if not row.alone:  # the student alone, as exported, in its baseline's plain config
                student = run.work_dir / "student.pth"
                stale = (not student.is_file()
                         or student.stat().st_mtime < run.checkpoint.stat().st_mtime)
                if stale:
                    export_student(str(run.checkpoint), str(student))
                scored = RunResult(name=label, config=self._baseline(row).config,
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

    def _baseline(self, row: Row | None = None) -> Row:
        """The row ``row`` is measured against (default, and for most rows: the baseline)."""
        if row is not None and row.baseline is not None:
            return next(r for r in self.rows if r.name == row.baseline)
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
        base = {(r.row.name, r.seed): r.trainable for r in results}
        for r in results:
            r.extra_params = r.trainable - base[(self._baseline(r.row).name, r.seed)]
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
    time relative to the baseline of the same seed (mean over seeds; the row's own ``baseline``
    row where it names one), per-seed AP values."""
    times = {(r.row.name, r.seed): r.step_time for r in results}
    main = next((r.row.name for r in results if r.row.group == "baseline"), None)
    rows: dict[str, dict] = {}
    for r in results:
        entry = rows.setdefault(r.row.name, dict(name=r.row.name, group=r.row.group, seeds=[],
                                                 ap=[], metrics={k: [] for k in METRICS},
                                                 extra_params=r.extra_params, rel_time=[]))
        entry["seeds"].append(r.seed)
        for k in METRICS:
            entry["metrics"][k].append(r.metrics.get(k, math.nan))
        base = times.get((r.row.baseline or main, r.seed))
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
