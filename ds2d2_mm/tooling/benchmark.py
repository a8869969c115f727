"""Micro-benchmarks of ds2d2_mm kernels.

Usage (``ds2d2-benchmark``, ``tools/benchmark.py`` in a checkout)::

    ds2d2-benchmark --sections disw,haar --device cpu --json out.json [--small]

Each section is a function ``(args) -> list of row dicts`` registered in :data:`SECTIONS`; every
row carries ``section`` and ``case`` keys plus its measurements. The script prints one plain
text table per section and, with ``--json``, writes all rows (and the run's settings) to a file.
Timings use :func:`time_ms`: warm-up calls, then ``torch.utils.benchmark.Timer.blocked_autorange``
(blocks of calls until the time budget is spent, CUDA synchronised by the timer, torch's thread
count kept), reporting the median time per call.

Sections:

- ``disw``: DISW maps for the five FPN levels of an 800x800 input (strides 8 to 128), batch 2,
  at 50, 500 and 2000 boxes per image: vectorised ``disw_pyramid`` against the per-box loop
  ``disw_weights_reference``.
- ``haar``: forward + backward of the one-level Haar DWT at the five FPN level sizes of an
  800x800 input, batch 2, 256 channels: ``haar_dwt`` against ``pytorch_wavelets.DWTForward``.
- ``step``: train step (forward, backward, SGD step) of the R18 student alone against the
  R101 -> R18 ``SpectralDistiller``, RetinaNet and Faster R-CNN, batch 2, 800x800, 60 / 500 /
  2000 boxes per image; their ratio, the teacher's forward time and, on CUDA, peak memory.
- ``breakdown``: forward time of each part of one RetinaNet distillation step (student pass,
  teacher forward, adapter, decomposition, DISW, explicit loss, each amplifier's KD).
- ``stepcost`` (by name only): the distillation step and its variants against their FLOP floor
  in interleaved rounds, with a per-phase breakdown, before and after a change in one run
  (:mod:`ds2d2_mm.tooling.stepcost`).

``--small`` shrinks inputs and repetitions so that everything runs in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.benchmark import Timer

from ..utils.paths import config_root
from .stepcost import bench_stepcost

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
#: Defaults: warm-up calls and the timed budget per measurement (``blocked_autorange``'s
#: ``min_run_time``, s). A budget of 0 times a single call (the smoke runs of ``--small``).
WARMUP, BUDGET_S = 3, 3.0
SMALL_WARMUP, SMALL_BUDGET_S = 1, 0.0
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
    budget_s: float = BUDGET_S,
) -> float:
    """Median wall time of one ``fn()`` call in milliseconds.

    Runs ``warmup`` untimed calls, then ``torch.utils.benchmark.Timer.blocked_autorange`` with
    ``min_run_time=budget_s``: blocks of calls (the block size chosen so that the timer's own
    overhead is negligible) until ``budget_s`` is spent, at least one block; the median over
    blocks of the time per call. The timer synchronises CUDA (``device``) around each block and
    runs with torch's current thread count (``--threads``), not its default of one thread.
    """
    for _ in range(warmup):
        fn()
    _synchronize(device)
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=budget_s).median * MS_PER_S


def fpn_sizes(side: int) -> list[int]:
    """Side of each FPN level (P3..P7) of a ``side`` x ``side`` input: ceil(side / stride)."""
    return [math.ceil(side / stride) for stride in FPN_STRIDES]


def _timing_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"warmup": args.warmup, "budget_s": args.budget_s}


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
    from ds2d2_mm.models.layers.disw import disw_pyramid, disw_weights_reference

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

    from ds2d2_mm.models.layers.spectral import haar_dwt

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


# ---------------------------------------------------------------------------------------------
# Distillation train step and its breakdown
# ---------------------------------------------------------------------------------------------

#: Ground-truth boxes per image for the train-step section (and with --small).
STEP_BOX_COUNTS, SMALL_STEP_BOX_COUNTS = (60, 500, 2000), (60, 500)
NUM_CLASSES = 20  # DIOR
MIB = 1024.0 ** 2


def detector_cfg(family: str, depth: int) -> dict:
    """RetinaNet or Faster R-CNN with a ResNet-``depth`` FPN, random init, DIOR classes."""
    from ds2d2_mm.apis.runner import mm_base_model

    if family == "retina":
        cfg = mm_base_model("retinanet_r50_fpn.py")
        cfg["bbox_head"]["num_classes"] = NUM_CLASSES
    else:
        cfg = mm_base_model("faster-rcnn_r50_fpn.py")
        cfg["roi_head"]["bbox_head"]["num_classes"] = NUM_CLASSES
    cfg["backbone"].update(depth=depth, init_cfg=None)
    if depth < 50:
        cfg["neck"]["in_channels"] = [64, 128, 256, 512]
    return cfg


def distiller_cfg(family: str) -> dict:
    """R101 -> R18 SpectralDistiller with the distill_cfg of ``family``'s DIOR paper config
    (configs/ds2d2/<family>_r101_r18_dior.py), random teacher."""
    from mmengine.config import Config

    teacher = detector_cfg(family, 101)
    paper = config_root() / "ds2d2" / f"{family}_r101_r18_dior.py"
    distill = Config.fromfile(str(paper)).model.distill_cfg.to_dict()
    return dict(type="SpectralDistiller", student=detector_cfg(family, 18),
                teacher_config=dict(model=teacher),
                amplifier_config=dict(model=dict(type="HighFrequencyAmplifier",
                                                 detector=teacher)),
                allow_random_teacher=True, distill_cfg=distill)


def _build(cfg: dict, device: torch.device) -> torch.nn.Module:
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    torch.manual_seed(SEED)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    return model.to(device).train()


def _batch(model: torch.nn.Module, side: int, boxes: int, device: torch.device):
    """A preprocessed batch of ``BATCH`` random images with ``boxes`` random boxes each."""
    from mmdet.testing import demo_mm_inputs

    packed = demo_mm_inputs(batch_size=BATCH, image_shapes=[(3, side, side)] * BATCH,
                            num_items=[boxes] * BATCH, num_classes=NUM_CLASSES)
    data = model.data_preprocessor(packed, True)
    return data["inputs"].to(device), [s.to(device) for s in data["data_samples"]]


def _sum_losses(losses: dict) -> torch.Tensor:
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)


def _autocast(args: argparse.Namespace):
    """fp16 autocast on the benchmark's device with ``--amp``, else a no-op context."""
    device = torch.device(args.device)
    return torch.autocast(device.type, dtype=torch.float16, enabled=bool(args.amp))


def _train_step_fn(model: torch.nn.Module, inputs, samples,
                   args: argparse.Namespace) -> Callable[[], None]:
    """One optimizer step; with ``--amp`` as mmengine's AmpOptimWrapper does it (fp16 autocast
    forward, scaled backward)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(torch.device(args.device).type, enabled=bool(args.amp))

    def step() -> None:
        with _autocast(args):
            loss = _sum_losses(model.loss(inputs, samples))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    return step


def _peak_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak allocated CUDA memory of one ``fn()`` call (``None`` on CPU)."""
    if device.type != "cuda":
        return None
    _synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _synchronize(device)
    return torch.cuda.max_memory_allocated(device) / MIB


def _register() -> None:
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import ds2d2_mm  # noqa: F401


def _step_rows(family: str, args: argparse.Namespace) -> list[Row]:
    """Rows of the ``step`` section for one detector family."""
    device = torch.device(args.device)
    side = SMALL_IMG_SIDE if args.small else IMG_SIDE
    counts = SMALL_STEP_BOX_COUNTS if args.small else STEP_BOX_COUNTS
    distiller = _build(distiller_cfg(family), device)
    student = distiller.student  # the same student, trained alone
    rows: list[Row] = []
    inputs, samples = _batch(distiller, side, counts[0], device)
    teacher_fwd = time_ms(lambda: distiller.teacher_feats(inputs), device,
                          **_timing_kwargs(args))
    teacher_peak = _peak_mib(lambda: distiller.teacher_feats(inputs), device)
    for boxes in counts:
        inputs, samples = _batch(distiller, side, boxes, device)
        s_step = _train_step_fn(student, inputs, samples, args)
        d_step = _train_step_fn(distiller, inputs, samples, args)
        s_ms = time_ms(s_step, device, **_timing_kwargs(args))
        d_ms = time_ms(d_step, device, **_timing_kwargs(args))
        rows.append({
            "section": "step",
            "case": f"{family} R101->R18 b{BATCH} {side}px{' fp16' if args.amp else ''}",
            "boxes/img": boxes, "student_ms": s_ms, "distill_ms": d_ms, "ratio": d_ms / s_ms,
            "teacher_fwd_ms": teacher_fwd, "student_peak_mib": _peak_mib(s_step, device),
            "distill_peak_mib": _peak_mib(d_step, device), "teacher_fwd_peak_mib": teacher_peak,
        })
    return rows


def bench_step(args: argparse.Namespace) -> list[Row]:
    """Train step (forward, backward, SGD step) of the student alone vs the SpectralDistiller."""
    _register()
    rows = []
    for family in ("retina", "faster_rcnn"):
        rows += _step_rows(family, args)
        if torch.device(args.device).type == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_breakdown(args: argparse.Namespace) -> list[Row]:
    """Forward time of each part of one RetinaNet distillation step (60 boxes per image)."""
    from ds2d2_mm.models.distillers.strategies import KDContext
    from ds2d2_mm.models.layers.disw import boxes_to_disw_input, disw_pyramid

    _register()
    device = torch.device(args.device)
    side = SMALL_IMG_SIDE if args.small else IMG_SIDE
    model = _build(distiller_cfg("retina"), device)
    inputs, samples = _batch(model, side, STEP_BOX_COUNTS[0], device)
    kw = _timing_kwargs(args)
    sp = model.strategy.student_pass(model.student, inputs, samples)
    feats_t = model.teacher_feats(inputs)
    adapted = model.connector(sp.feats)
    feats_amp = model.amplifier_feats(sp.feats, adapted, feats_t)
    ctx = KDContext(samples=samples, student_pass=sp, kd_cls=model.kd_cls, kd_reg=model.kd_reg,
                    strategy=model.strategy, student=model.student, teacher=model.teacher)
    boxes = [boxes_to_disw_input(s.gt_instances.bboxes)[0] for s in samples]
    img_shape = tuple(inputs.shape[-2:])
    grids = [tuple(model.explicit.decomposer(f)[0].shape[-2:]) for f in feats_t]
    amps = {a.name: a for a in model.amplifiers}

    def kd(name: str) -> dict:
        amp = amps[name]
        with torch.no_grad():
            inputs_t = amp.inputs(feats_t)
        return model.strategy.kd_losses(amp.head, amp.inputs(feats_amp), inputs_t, ctx)

    def full_step() -> None:
        _sum_losses(model.loss(inputs, samples)).backward()

    parts: list[tuple[str, Callable[[], object]]] = [
        ("student pass (backbone, neck, head, task loss)",
         lambda: model.strategy.student_pass(model.student, inputs, samples)),
        ("teacher forward (no_grad)", lambda: model.teacher_feats(inputs)),
        ("connector (1x1 adapter)", lambda: model.connector(sp.feats)),
        ("decomposition (student + teacher, all levels)",
         lambda: [model.explicit.decomposer(f) for f in (*adapted, *feats_t)]),
        ("DISW maps (all levels)", lambda: disw_pyramid(boxes, img_shape, grids)),
        ("explicit loss (incl. decomposition, DISW)",
         lambda: model.explicit(adapted, feats_t, boxes, img_shape)),
        ("full amplifier KD", lambda: kd("full")),
        ("high amplifier KD (incl. HF maps)", lambda: kd("high")),
        ("whole distillation step forward+backward", full_step),
    ]
    rows = []
    for name, fn in parts:
        def under_amp(fn: Callable[[], object] = fn) -> object:
            with _autocast(args):
                return fn()

        rows.append({"section": "breakdown", "case": name + (" (fp16)" if args.amp else ""),
                     "ms": time_ms(under_amp, device, **kw)})
    return rows


SECTIONS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "disw": bench_disw,
    "haar": bench_haar,
    "step": bench_step,
    "breakdown": bench_breakdown,
    "stepcost": bench_stepcost,
}
#: Sections run without ``--sections`` (``stepcost`` takes minutes to an hour: asked for by name).
DEFAULT_SECTIONS = ("disw", "haar", "step", "breakdown")
