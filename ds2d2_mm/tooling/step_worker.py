"""Worker process of the ``stepcost`` benchmark: builds the models of one detector family from one
source tree and times train steps on command.

Run by :mod:`ds2d2_mm.tooling.stepcost` as a script (``python step_worker.py --root R --spec
JSON``), never imported as part of the package: ``R`` is the source tree whose ``ds2d2_mm`` is
measured (this checkout, or a scratch ``git worktree`` of an earlier revision), so this file
imports nothing of the package but what every revision has (``SpectralDistiller``, its
registry, ``mm_base_model``) and keeps its own model-building code.

Protocol: after building, the worker prints one line ``@@ {"ready": ...}``; then it reads one JSON
command per line on stdin and answers each with one ``@@ {...}`` line on stdout (other output,
e.g. mmengine's logging, is ignored by the reader):

- ``{"cmd": "step", "variant": v, "boxes": b, "precision": p}`` -> ``{"s": seconds}``: one
  optimizer step (forward, backward, SGD step) of variant ``v`` on the batch with ``b`` boxes
  per image, in ``fp32`` or ``amp`` (fp16 autocast forward and a scaled backward, as mmengine's
  AmpOptimWrapper);
- ``{"cmd": "phases", ...}`` (same keys) -> ``{"phases": {path: seconds}}``: one step under
  ``ds2d2_mm.utils.phases.PhaseRecorder`` (``{"phases": null}`` in a tree without it);
- ``{"cmd": "memory", ...}`` -> peak CUDA memory of one step (MiB; ``null`` on CPU), see
  :func:`memory`;
- ``{"cmd": "flops"}`` -> the FLOP counts of :func:`flops`;
- ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Marker of the worker's answer lines.
MARK = "@@ "
NUM_CLASSES = 20  # DIOR
SEED = 0
MIB = 1024.0 ** 2
#: Variant name -> distill_cfg overrides over the paper config's (``None``: the student alone).
VARIANTS: dict[str, dict | None] = {
    "student": None,
    "distilled": {},
    "explicit": dict(amplifiers=dict(full=0.0, high=0.0)),
    "full-amp": dict(explicit=None, amplifiers=dict(full=1.0, high=0.0)),
    "high-amp": dict(explicit=None, amplifiers=dict(full=0.0, high=1.0)),
    "distilled+compile": dict(accelerate=dict(compile=True)),
    "distilled+fp16": dict(accelerate=dict(frozen_fp16=True)),
}
#: Widths: (teacher depth, student depth, base channels teacher, student, FPN channels,
#: stacked head convs, RoI fc channels). ``real``: R101 -> R18, 256-channel FPN, mmdet's heads.
WIDTHS = {
    "real": dict(t_depth=101, s_depth=18, t_base=64, s_base=64, fpn=256, convs=4, fc=1024),
    "tiny": dict(t_depth=18, s_depth=18, t_base=16, s_base=8, fpn=16, convs=1, fc=32),
}


def _emit(payload: dict) -> None:
    sys.stdout.write(MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


def detector_cfg(family: str, role: str, widths: dict) -> dict:
    """RetinaNet or Faster R-CNN (mmdet's base configs) at ``widths`` for the ``teacher`` or
    ``student``, random init, DIOR's 20 classes."""
    from ds2d2_mm.apis.runner import mm_base_model

    depth, base = widths[f"{role[0]}_depth"], widths[f"{role[0]}_base"]
    fpn = widths["fpn"]
    if family == "retina":
        cfg = mm_base_model("retinanet_r50_fpn.py")
        cfg["bbox_head"].update(num_classes=NUM_CLASSES, in_channels=fpn, feat_channels=fpn,
                                stacked_convs=widths["convs"])
    elif family == "faster_rcnn":
        cfg = mm_base_model("faster-rcnn_r50_fpn.py")
        cfg["rpn_head"].update(in_channels=fpn, feat_channels=fpn)
        cfg["roi_head"]["bbox_roi_extractor"]["out_channels"] = fpn
        cfg["roi_head"]["bbox_head"].update(num_classes=NUM_CLASSES, in_channels=fpn,
                                            fc_out_channels=widths["fc"])
    else:
        raise ValueError(f"unknown detector {family!r}: retina or faster_rcnn")
    cfg["backbone"].update(depth=depth, base_channels=base, init_cfg=None)
    expansion = 4 if depth >= 50 else 1
    cfg["neck"].update(in_channels=[base * expansion * 2**i for i in range(4)], out_channels=fpn)
    return cfg


def paper_distill_cfg(root: Path, family: str) -> dict:
    """The ``distill_cfg`` of configs/ds2d2/<family>_r101_r18_dior.py in ``root``."""
    from mmengine.config import Config

    path = root / "configs" / "ds2d2" / f"{family}_r101_r18_dior.py"
    return Config.fromfile(str(path)).model.distill_cfg.to_dict()


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _build(cfg: dict, device: Any):
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    torch.manual_seed(SEED)
    model = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    model.init_weights()
    return model.to(device).train()


class Worker:
    """The models, batches and step functions of one family in one source tree."""

    def __init__(self, spec: dict, root: Path) -> None:
        import torch
        from mmdet.utils import register_all_modules

        register_all_modules(init_default_scope=True)
        import ds2d2_mm  # noqa: F401  (the tree's own package: sys.path starts with root)

        self.torch = torch
        self.spec = spec
        self.device = torch.device(spec["device"])
        torch.set_num_threads(int(spec["threads"]))
        family, widths = spec["detector"], WIDTHS[spec["widths"]]
        self.family = family
        teacher = detector_cfg(family, "teacher", widths)
        student = detector_cfg(family, "student", widths)
        paper = paper_distill_cfg(root, family)
        self.models: dict[str, torch.nn.Module] = {}
        for name in spec["variants"]:
            over = VARIANTS[name]
            if over is None:
                self.models[name] = _build(student, self.device)
                continue
            cfg = dict(type="SpectralDistiller", student=student,
                       teacher_config=dict(model=teacher),
                       amplifier_config=dict(model=dict(type="HighFrequencyAmplifier",
                                                        detector=teacher)),
                       allow_random_teacher=True, distill_cfg=_merge(paper, over))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.models[name] = _build(cfg, self.device)
        self.distiller = next((m for n, m in self.models.items() if VARIANTS[n] is not None),
                              None)
        self.batches: dict[int, tuple] = {}
        self.steps: dict[tuple[str, str], Callable[[int], None]] = {}
        self.optimizers: dict[tuple[str, str], Any] = {}

    # -- inputs and steps -----------------------------------------------------------------------
    def batch(self, boxes: int) -> tuple:
        """(inputs (B, 3, S, S), data samples) with ``boxes`` random boxes per image."""
        if boxes not in self.batches:
            from mmdet.testing import demo_mm_inputs

            torch, spec = self.torch, self.spec
            torch.manual_seed(SEED)
            side, batch = int(spec["size"]), int(spec["batch"])
            packed = demo_mm_inputs(batch_size=batch, image_shapes=[(3, side, side)] * batch,
                                    num_items=[boxes] * batch, num_classes=NUM_CLASSES)
            model = next(iter(self.models.values()))
            data = model.data_preprocessor(packed, True)
            self.batches[boxes] = (data["inputs"].to(self.device),
                                   [s.to(self.device) for s in data["data_samples"]])
        return self.batches[boxes]

    def step_fn(self, variant: str, precision: str) -> Callable[[int], None]:
        """One optimizer step of ``variant`` on a batch of ``boxes`` boxes per image."""
        key = (variant, precision)
        if key in self.steps:
            return self.steps[key]
        torch = self.torch
        model = self.models[variant]
        amp = precision == "amp"
        params = [p for p in model.parameters() if p.requires_grad]
        opt = self.optimizers[key] = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
        scaler = torch.amp.GradScaler(self.device.type, enabled=amp)
        phase = _phase_fn()

        def step(boxes: int) -> None:
            inputs, samples = self.batch(boxes)
            with phase("forward"), torch.autocast(self.device.type, dtype=torch.float16,
                                                  enabled=amp):
                losses = model.loss(inputs, samples)
                loss = sum(sum(v) if isinstance(v, list) else v
                           for k, v in losses.items() if "loss" in k)
            with phase("backward"):
                scaler.scale(loss).backward()
            with phase("optimizer step"):
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)

        self.steps[key] = step
        return step

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def time_step(self, variant: str, boxes: int, precision: str) -> float:
        """Wall seconds of one step (CUDA synchronised at both ends)."""
        step = self.step_fn(variant, precision)
        self.batch(boxes)
        self._sync()
        start = time.perf_counter()
        step(boxes)
        self._sync()
        return time.perf_counter() - start

    def phases(self, variant: str, boxes: int, precision: str) -> dict | None:
        """Seconds per phase path of one step (``None``: the tree has no phase recorder)."""
        try:
            from ds2d2_mm.utils.phases import PhaseRecorder
        except ImportError:
            return None
        step = self.step_fn(variant, precision)
        self.batch(boxes)
        with PhaseRecorder(self.device) as rec:
            self._sync()
            start = time.perf_counter()
            step(boxes)
            self._sync()
            rec.totals["whole step"] = time.perf_counter() - start
        return rec.totals

    def memory(self, variant: str, boxes: int, precision: str) -> dict | None:
        """Peak CUDA memory of one step of ``variant`` and of the teacher's forward, MiB.

        ``step_mib``: peak allocated during the step less what was allocated before it (its
        activations, gradients and temporaries), plus the variant's resident parameters,
        buffers and optimizer state (``resident_mib``; for a distiller its teacher and amplifier
        heads too). ``teacher_forward_mib``: the same for the teacher's forward alone (its
        parameters and buffers resident). ``None`` off CUDA.
        """
        torch = self.torch
        if self.device.type != "cuda":
            return None
        step = self.step_fn(variant, precision)
        inputs, _ = self.batch(boxes)
        step(boxes)  # optimizer state exists
        model = self.models[variant]
        tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
        for hidden in getattr(model, "hidden_modules", lambda: [])():
            tensors.update({id(t): t for t in (*hidden.parameters(), *hidden.buffers())})
        opt = self.optimizers[(variant, precision)]
        opt_state = sum(v.numel() * v.element_size() for s in opt.state.values()
                        for v in s.values() if torch.is_tensor(v))
        resident = sum(t.numel() * t.element_size() for t in tensors.values()) + opt_state

        def transient(fn: Callable[[], object]) -> float:
            self._sync()
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            fn()
            self._sync()
            return torch.cuda.max_memory_allocated(self.device) - base

        out = {"resident_mib": resident / MIB,
               "step_mib": (transient(lambda: step(boxes)) + resident) / MIB}
        if self.distiller is not None:
            teacher = self.distiller.teacher
            t_res = sum(t.numel() * t.element_size()
                        for t in (*teacher.parameters(), *teacher.buffers()))
            amp = precision == "amp"

            def forward() -> object:
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=amp):
                    return self.distiller.teacher_feats(inputs)

            out["teacher_forward_mib"] = (transient(forward) + t_res) / MIB
        return out

    # -- FLOPs ----------------------------------------------------------------------------------
    def flops(self) -> dict:
        """Forward FLOPs (mmengine's FlopAnalyzer, one multiply-add counted as one FLOP) on the
        batch of the first box count: the student detector, the teacher's backbone and neck,
        and each amplifier head on teacher maps (a RetinaNet head on the FPN levels; an RoI head
        on the RoIs the student samples)."""
        from mmengine.analysis import FlopAnalyzer

        torch = self.torch
        inputs, samples = self.batch(int(self.spec["boxes"][0]))
        dist = self.distiller
        if dist is None:
            raise RuntimeError("flops need a distiller variant")
        student, teacher = dist.student, dist.teacher
        rois = None
        if self.family == "faster_rcnn":
            from ds2d2_mm.models.distillers.strategies.two_stage import TwoStageStrategy

            torch.manual_seed(SEED)
            sp = dist.strategy.student_pass(student, inputs, samples)
            rois = TwoStageStrategy.sampled_rois(sp)

        def count(fn: Callable[..., Any], modules: list, *args: Any) -> int:
            wrapper = _Call(fn, modules).eval()
            with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
                analyzer = FlopAnalyzer(wrapper, tuple(args))
                analyzer.unsupported_ops_warnings(False)
                analyzer.uncalled_modules_warnings(False)
                return int(analyzer.total())

        with torch.no_grad():
            feats_s = tuple(student.extract_feat(inputs))
            feats_t = tuple(teacher.extract_feat(inputs))
        out: dict[str, Any] = {"rois": None if rois is None else int(rois.shape[0])}
        if self.family == "retina":
            out["student_forward"] = count(
                lambda x: _flat(student.bbox_head(student.extract_feat(x))), [student], inputs)
        else:
            out["student_forward"] = count(
                lambda x, r: _flat((student.rpn_head(f := student.extract_feat(x)),
                                    student.roi_head._bbox_forward(f, r))),
                [student], inputs, rois)
        out["teacher_backbone_neck"] = count(lambda x: _flat(teacher.extract_feat(x)),
                                             [teacher], inputs)
        out["amplifier_head"] = {}
        for amp in dist.amplifiers:
            head = amp.head
            if rois is None:
                fn = lambda *f, head=head: _flat(head(list(f)))  # noqa: E731
                out["amplifier_head"][amp.name] = count(fn, [head], *feats_t)
            else:
                fn = lambda r, *f, head=head: _flat(head._bbox_forward(list(f), r))  # noqa: E731
                out["amplifier_head"][amp.name] = count(fn, [head], rois, *feats_t)
        out["student_feats_shapes"] = [list(f.shape) for f in feats_s]
        return out


def _flat(obj: Any) -> tuple:
    """The tensors of nested tuples, lists and dicts, as one tuple (for tracing)."""
    import torch

    if torch.is_tensor(obj):
        return (obj,)
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return tuple(t for o in obj for t in _flat(o))
    return ()


def _call_module():
    import torch

    class Call(torch.nn.Module):
        def __init__(self, fn: Callable[..., Any], modules: list) -> None:
            super().__init__()
            self.fn = fn
            self.parts = torch.nn.ModuleList(modules)

        def forward(self, *args: Any) -> Any:
            return self.fn(*args)

    return Call


def _Call(fn: Callable[..., Any], modules: list):  # noqa: N802 - a class made lazily
    return _call_module()(fn, modules)


def _phase_fn() -> Callable[[str], contextlib.AbstractContextManager]:
    """The tree's ``phase`` (timed only under its recorder), or a no-op where it has none."""
    try:
        from ds2d2_mm.utils.phases import phase
    except ImportError:
        return lambda name: contextlib.nullcontext()
    return phase


def serve(spec: dict, root: Path) -> None:
    """Build, announce, then answer commands until ``quit`` or end of input."""
    worker = Worker(spec, root)
    _emit({"ready": True, "root": str(root), "variants": list(worker.models)})
    handlers = {
        "step": lambda c: {"s": worker.time_step(c["variant"], int(c["boxes"]),
                                                 c["precision"])},
        "phases": lambda c: {"phases": worker.phases(c["variant"], int(c["boxes"]),
                                                     c["precision"])},
        "memory": lambda c: {"memory": worker.memory(c["variant"], int(c["boxes"]),
                                                     c["precision"])},
        "flops": lambda c: {"flops": worker.flops()},
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        try:
            _emit(handlers[cmd["cmd"]](cmd))
        except Exception as err:  # reported to the orchestrator, which stops with it
            _emit({"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stepcost worker (run by the benchmark)")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--spec", required=True, help="JSON: detector, widths, variants, ...")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in (here, "")]
    sys.path.insert(0, str(root))
    try:
        serve(json.loads(args.spec), root)
    except Exception as err:
        _emit({"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
