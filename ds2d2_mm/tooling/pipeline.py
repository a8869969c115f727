"""The three-stage DS2D2 recipe as one resumable job.

teacher -> high-frequency amplifier -> distilled student, plus the student baseline under the
same schedule, then evaluation of all four, export of the distilled student and a report. Each
stage is an ordinary train / test command (``python -m ds2d2_mm.cli.train``, the module behind
``ds2d2-train`` and ``tools/train.py``; printed before it runs, so users can run it alone), run in
the current working directory, and is skipped when its checkpoint or metrics already exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import StageError
from ..utils.paths import shipped_config
from .report import write_report
from .runs import REPO, RunResult

__all__ = ["DEFAULT_PORT", "PRESETS", "REPO", "Pipeline", "Preset", "RunResult",
           "data_root_options", "last_checkpoint"]

#: torchrun's rendezvous port of multi-GPU stages (``PORT`` overrides it, as for dist_train.sh).
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class Preset:
    """Configs of one recipe (paths below the shipped ``configs/``)."""

    teacher: str
    amplifier: str
    baseline: str
    distill: str
    work_root: str
    synthetic_data: str | None = None  # generate the built-in data into this folder first
    variant: str = "rgb"  # which variant of the built-in data (ds2d2_mm.tooling.synthetic)
    # environment variable through which the configs read the data folder (mmengine's
    # '{{$NAME:default}}'); set for every stage and the report when the preset has one
    data_env: str | None = None
    # options of the deployment stage (ds2d2-deploy of the exported distilled student: ONNX,
    # parity, INT8, AP and latency); None: no deployment stage
    deploy: tuple[str, ...] | None = None


#: The demo's deployment stage, kept small: 4 parity images, 32 calibration images, 8 timed
#: images x 3 rounds per backend.
DEMO_DEPLOY = ("--parity-images", "4", "--calib-num", "32", "--latency-images", "8",
               "--latency-repeats", "3")


def _demo(name: str, configs: str, data: str, variant: str = "rgb", data_env: str | None = None,
          student: str | None = None) -> Preset:
    """A recipe on the built-in data: configs ``configs/demo/retina_<stage>_<configs>.py``
    (stages ``teacher``, ``hfamp``, ``student``, ``distill``; ``student`` replaces ``<configs>``
    in the student's name where it differs), work dir ``work_dirs/<name>``, data generated into
    ``data/synthetic_<data>``."""
    stem = "configs/demo/retina"
    return Preset(teacher=f"{stem}_teacher_{configs}.py", amplifier=f"{stem}_hfamp_{configs}.py",
                  baseline=f"{stem}_student_{student or configs}.py",
                  distill=f"{stem}_distill_{configs}.py", work_root=f"work_dirs/{name}",
                  synthetic_data=f"data/synthetic_{data}", variant=variant, data_env=data_env)


def _recipe(folder: str, detector: str, dataset: str) -> Preset:
    """A recipe named ``<detector>_<dataset>``, its configs in ``configs/<folder>/`` by the
    paper's names: ``<detector>_r101_<dataset>.py`` (teacher), ``_r101_hfamp_`` (amplifier),
    ``_r18_`` (student baseline), ``_r101_r18_`` (distilled student)."""
    stem = f"configs/{folder}/{detector}"
    return Preset(teacher=f"{stem}_r101_{dataset}.py", amplifier=f"{stem}_r101_hfamp_{dataset}.py",
                  baseline=f"{stem}_r18_{dataset}.py", distill=f"{stem}_r101_r18_{dataset}.py",
                  work_root=f"work_dirs/{detector}_{dataset}")


def _pair(teacher: str, student: str, dataset: str, distill: str | None = None,
          folder: str = "families", teacher_folder: str | None = None) -> Preset:
    """A recipe of the detector families (``configs/families/``, this project's extension),
    named by teacher and student: ``<teacher>_<dataset>.py`` (teacher, in ``teacher_folder``
    when it is another folder's), ``<teacher>_hfamp_<dataset>.py`` (amplifier),
    ``<student>_<dataset>.py`` (baseline), and ``distill`` (default
    ``<teacher>_<student size>_<dataset>.py``); work dir ``work_dirs/<distill stem>``."""
    stem, t_stem = f"configs/{folder}", f"configs/{teacher_folder or folder}"
    distill = distill or f"{teacher}_{student.rsplit('_', 1)[-1]}_{dataset}.py"
    return Preset(teacher=f"{t_stem}/{teacher}_{dataset}.py",
                  amplifier=f"{t_stem}/{teacher}_hfamp_{dataset}.py",
                  baseline=f"{stem}/{student}_{dataset}.py", distill=f"{stem}/{distill}",
                  work_root=f"work_dirs/{Path(distill).stem}")


PRESETS: dict[str, Preset] = {
    "demo": dataclasses.replace(_demo("demo", "synthetic", "aerial"), deploy=DEMO_DEPLOY),
    # the demo on 4-band rasters (R, G, B, NIR uint16 TIFFs of the same scenes, per-band
    # statistics): LoadMultiBandImage, MultiBandDetDataPreprocessor and in_channels=4 throughout
    "rgbn_demo": _demo("rgbn_demo", "rgbn", "rgbn", variant="rgbn", data_env="DS2D2_RGBN_ROOT"),
    # cross-modal: an RGB teacher distilled into an infrared (1-band) student on the paired
    # variant (<split>/rgb/ + <split>/ir/); the baseline and the exported student are evaluated
    # on the infrared images alone, the teacher and the amplifier on the RGB ones
    "paired_demo": _demo("paired_demo", "paired", "paired", variant="paired",
                         data_env="DS2D2_PAIRED_ROOT", student="paired_ir"),
    "retina_dior": _recipe("ds2d2", "retina", "dior"),
    "faster_rcnn_dior": _recipe("ds2d2", "faster_rcnn", "dior"),
    "retina_dota": _recipe("ds2d2", "retina", "dota"),
    "faster_rcnn_dota": _recipe("ds2d2", "faster_rcnn", "dota"),
    # oriented boxes (mmrotate; this project's extension); their metric is DOTA mAP, so run
    # them with --no-report
    "rotated_retina_dota": _recipe("ds2d2", "rotated_retina", "dota"),
    # SAR ships (mmrotate's SSDD / HRSID configs, one input band; this project's extension, no
    # published DS2D2 SAR values); rotated-COCO metric, so run them with --no-report
    "oriented_rcnn_ssdd": _recipe("sar", "oriented_rcnn", "ssdd"),
    "oriented_rcnn_hrsid": _recipe("sar", "oriented_rcnn", "hrsid"),
    # your own multi-band COCO folder: set data_root, bands and classes at the top of
    # configs/multiband/retina_r101_coco_multiband.py and write its band_stats.json first
    "retina_coco_multiband": _recipe("multiband", "retina", "coco_multiband"),
    "oriented_rcnn_dota": _recipe("ds2d2", "oriented_rcnn", "dota"),
    # the detector families (configs/families, this project's extension), each on its family's
    # own mmdet / mmrotate schedule; the oriented ones score DOTA mAP, run them with --no-report
    "rtmdet_tiny_dior": _pair("rtmdet_l", "rtmdet_tiny", "dior"),
    "rtmdet_s_dior": _pair("rtmdet_l", "rtmdet_s", "dior"),
    "fcos_dior": _recipe("families", "fcos", "dior"),
    "atss_dior": _recipe("families", "atss", "dior"),
    "rotated_rtmdet_tiny_dota": _pair("rotated_rtmdet_l", "rotated_rtmdet_tiny", "dota"),
    "rotated_rtmdet_s_dota": _pair("rotated_rtmdet_l", "rotated_rtmdet_s", "dota"),
    # heterogeneous pairs: the Oriented R-CNN R101 teacher of configs/ds2d2 for RTMDet-R students
    **{f"oriented_rcnn_rotated_rtmdet_{size}_dota": _pair(
        "oriented_rcnn_r101", f"rotated_rtmdet_{size}", "dota", teacher_folder="ds2d2",
        distill=f"oriented_rcnn_r101_rotated_rtmdet_{size}_dota.py") for size in ("tiny", "s")},
}


def data_root_options(root: Path, eval_ann: str = "annotations/val.json") -> list[str]:
    """``--cfg-options`` that point a COCO-style config's datasets and metrics at ``root``
    (``eval_ann``: the evaluation annotation file, relative to ``root``)."""
    root_s = f"{root}/"
    return [
        f"train_dataloader.dataset.data_root={root_s}",
        f"val_dataloader.dataset.data_root={root_s}",
        f"test_dataloader.dataset.data_root={root_s}",
        f"val_evaluator.ann_file={root_s}{eval_ann}",
        f"test_evaluator.ann_file={root_s}{eval_ann}",
    ]


def last_checkpoint(work_dir: Path) -> Path | None:
    """The checkpoint that mmengine's CheckpointHook recorded last in ``work_dir``, if it exists.

    Reads the record with mmengine's own ``find_latest_checkpoint``; ``None`` when there is no
    record (checked first: mmengine would print a "nothing to resume" line) or when the recorded
    file is gone.
    """
    from mmengine.runner import find_latest_checkpoint

    if not (Path(work_dir) / "last_checkpoint").is_file():
        return None
    saved = find_latest_checkpoint(str(work_dir))
    path = Path(saved) if saved else None
    return path if path is not None and path.is_file() else None


class Pipeline:
    """Runs a preset's stages in order, skipping finished ones.

    Args:
        preset: The recipe.
        work_root: Where each stage's work dir goes (``<work_root>/<config stem>``).
        gpus: Number of GPUs per training stage (> 1 runs it with torchrun).
        extra_options: ``--cfg-options`` added to every train and test command (e.g. to shorten
            a run in tests).
        python: Interpreter that runs the tools.
        data_root: For presets on the built-in data: where it is generated (default the
            preset's folder); the stages are pointed at it.
        synthetic: Generator arguments (num_train, num_val, img_size, seed) for that data.
        auto_scale_lr: Pass ``--auto-scale-lr`` to every training stage (the paper configs give
            the lr of a total batch of 16; this scales it to ``gpus`` x the per-GPU batch).
        deploy: Run the preset's deployment stage (where it has one).
    """

    def __init__(self, preset: Preset, work_root: str | Path | None = None, gpus: int = 1,
                 extra_options: Sequence[str] = (), python: str = sys.executable,
                 data_root: str | Path | None = None, synthetic: dict | None = None,
                 auto_scale_lr: bool = False, deploy: bool = True) -> None:
        self.preset = preset
        self.deploy_stage = deploy
        self.work_root = Path(work_root or preset.work_root).resolve()
        self.gpus = gpus
        self.extra = list(extra_options)
        self.python = python
        self.synthetic = dict(synthetic or {})
        self.auto_scale_lr = auto_scale_lr
        self.data_root: Path | None = None
        if preset.synthetic_data:
            self.data_root = Path(data_root or preset.synthetic_data).resolve()
            if data_root is not None:
                self.extra = data_root_options(self.data_root) + self.extra
        self.env: dict[str, str] = {}
        if preset.data_env and self.data_root is not None:
            self.env[preset.data_env] = str(self.data_root)
        self.t0 = time.time()

    def log(self, msg: str) -> None:
        """Progress line with the elapsed time."""
        print(f"[pipeline {time.time() - self.t0:7.1f}s] {msg}", flush=True)

    def run_cmd(self, cmd: list[str]) -> None:
        """Print the command, then run it from the repo root; a failure stops the pipeline."""
        self.log("$ " + shlex.join(cmd))
        env = dict(os.environ, **self.env,
                   PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise StageError(f"stage command failed with exit code {proc.returncode}: "
                             f"{shlex.join(cmd)}")

    @staticmethod
    def config(name: str) -> str:
        """A preset's config as a path: relative to the working directory when below it."""
        path = shipped_config(name)
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def work_dir(self, config: str) -> Path:
        return self.work_root / Path(config).stem

    def train(self, name: str, config: str, options: Sequence[str] = ()) -> RunResult:
        """Train ``config`` unless its work dir already has a final checkpoint."""
        wd = self.work_dir(config)
        run = RunResult(name=name, config=config, work_dir=wd)
        done = wd / "stage.done"
        if done.is_file() and (ckpt := last_checkpoint(wd)) is not None:
            self.log(f"{name}: done before, using {ckpt}")
            run.checkpoint = ckpt
            return run
        opts = [*self.extra, *options]
        if self.gpus > 1:
            port = os.environ.get("PORT", str(DEFAULT_PORT))
            cmd = [self.python, "-m", "torch.distributed.run", f"--nproc_per_node={self.gpus}",
                   f"--master_port={port}", "-m", "ds2d2_mm.cli.train", self.config(config),
                   "--launcher", "pytorch"]
        else:
            cmd = [self.python, "-m", "ds2d2_mm.cli.train", self.config(config)]
        cmd += ["--work-dir", str(wd)]
        if self.auto_scale_lr:
            cmd += ["--auto-scale-lr"]
        if (wd / "last_checkpoint").is_file():
            cmd += ["--resume"]  # an interrupted stage continues where it stopped
        if opts:
            cmd += ["--cfg-options", *opts]
        self.log(f"{name}: training")
        start = time.time()
        self.run_cmd(cmd)
        run.train_seconds = time.time() - start
        run.checkpoint = last_checkpoint(wd)
        if run.checkpoint is None:
            raise RuntimeError(f"{name}: training finished without a checkpoint in {wd}")
        done.write_text(str(run.checkpoint))
        return run

    def evaluate(self, run: RunResult, options: Sequence[str] = ()) -> None:
        """Test ``run``'s checkpoint unless its metrics file exists."""
        out = run.work_dir / "test_metrics.json"
        stamp = str(run.checkpoint)
        if out.is_file():
            saved = json.loads(out.read_text())
            if saved.pop("_checkpoint", None) == stamp:
                self.log(f"{run.name}: evaluated before")
                run.metrics = saved
                return
        self.log(f"{run.name}: evaluating")
        tmp = run.work_dir / "test_metrics.tmp.json"
        cmd = [self.python, "-m", "ds2d2_mm.cli.test", self.config(run.config), stamp, "--work-dir",
               str(run.work_dir / "test"), "--metrics-json", str(tmp)]
        opts = [*self.extra, *options]
        if opts:
            cmd += ["--cfg-options", *opts]
        self.run_cmd(cmd)
        run.metrics = json.loads(tmp.read_text())
        out.write_text(json.dumps(dict(run.metrics, _checkpoint=stamp), indent=2))
        tmp.unlink()

    def deploy(self, exported: RunResult) -> dict | None:
        """The deployment stage of the exported student (``ds2d2-deploy``), unless the preset has
        none or its ``deploy.json`` is of the same checkpoint; returns the summary."""
        if self.preset.deploy is None or not self.deploy_stage:
            return None
        out = self.work_root / "deploy"
        summary = out / "deploy.json"
        stamp = str(exported.checkpoint)
        if summary.is_file():
            saved = json.loads(summary.read_text())
            if saved.get("checkpoint") == stamp:
                self.log("deploy: measured before")
                return saved
        self.log("deploy: ONNX export, parity, INT8, AP and latency")
        cmd = [self.python, "-m", "ds2d2_mm.cli.deploy", self.config(exported.config), stamp,
               "--out-dir", str(out), "--no-progress", *self.preset.deploy]
        if self.extra:
            cmd += ["--cfg-options", *self.extra]
        self.run_cmd(cmd)
        return json.loads(summary.read_text())

    def check_inputs(self) -> None:
        """Stop before the first stage when a dataset file of a stage is missing (one paragraph:
        the file, the dataset, its release and the command that makes it); the checkpoints of
        the earlier stages are what the pipeline makes, so they are not checked here."""
        import argparse

        from mmengine.config import DictAction

        from ..apis.preflight import check_datasets
        from ..apis.runner import load_config

        parser = argparse.ArgumentParser()
        parser.add_argument("--cfg-options", nargs="+", action=DictAction)
        options = parser.parse_args(["--cfg-options", *self.extra] if self.extra else [])
        p = self.preset
        for config in dict.fromkeys((p.teacher, p.amplifier, p.baseline, p.distill)):
            path = self.config(config)
            check_datasets(load_config(path, options.cfg_options), "pipeline", path)

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        """``self.env`` set in this process (the report reads the configs here), then restored."""
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def run(self, report: bool = True) -> dict[str, RunResult]:
        """All stages; returns the runs by name (teacher, amplifier, baseline, distilled)."""
        with self._environment():
            return self._run(report)

    def _run(self, report: bool) -> dict[str, RunResult]:
        p = self.preset
        if self.data_root is not None:
            from .synthetic import ensure_synthetic_dataset

            variant = "" if p.variant == "rgb" else f" ({p.variant} variant)"
            self.log(f"data: built-in synthetic scenes{variant} in {self.data_root}")
            ensure_synthetic_dataset(self.data_root, **self.synthetic, variant=p.variant)
        self.check_inputs()
        teacher = self.train("teacher", p.teacher)
        amp_opts = [f"model.teacher_ckpt={teacher.checkpoint}"]
        amplifier = self.train("amplifier", p.amplifier, amp_opts)
        baseline = self.train("baseline", p.baseline)
        distill_opts = [f"model.teacher_ckpt={teacher.checkpoint}",
                        f"model.amplifier_ckpt={amplifier.checkpoint}"]
        distilled = self.train("distilled", p.distill, distill_opts)
        runs = {"teacher": teacher, "amplifier": amplifier, "baseline": baseline,
                "distilled": distilled}
        from ..apis.export_student import export_student

        student_path = self.work_root / "distilled_student.pth"
        counts = export_student(str(distilled.checkpoint), str(student_path))
        self.log(f"export: {student_path} ({counts['exported']} tensors)")
        # the distilled student is evaluated as exported, in the plain student config
        exported = RunResult(name="distilled", config=p.baseline,
                             work_dir=self.work_root / "distilled_student",
                             checkpoint=student_path)
        exported.work_dir.mkdir(parents=True, exist_ok=True)
        self.evaluate(teacher)
        self.evaluate(amplifier, amp_opts)
        self.evaluate(baseline)
        self.evaluate(exported)
        distilled.metrics = exported.metrics
        deployment = self.deploy(exported)
        if report:
            path = write_report(self.work_root, runs, elapsed_s=time.time() - self.t0,
                                student_export=student_path, data_root=self.data_root,
                                deployment=deployment)
            self.log(f"report: {path}")
        self.log(f"finished in {time.time() - self.t0:.0f} s")
        return runs
