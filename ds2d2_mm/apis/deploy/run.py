"""The whole deployment of one student: export, parity, INT8, AP and latency, then the files.

Everything is computed in memory first; the ONNX files and ``deploy.json`` are written (each
atomically) only once every step has passed, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import copy
import datetime
import os
import platform
from pathlib import Path

import torch

from ...utils.errors import ParityError
from ...utils.io import atomic_write_bytes, atomic_write_json
from .data import calibration_items, folder_images, preprocess, single_batches, test_items
from .evaluate import evaluate
from .export import EXPORTER, export_graphs, load_student
from .latency import measure_latency
from .ort_runner import OrtDetector, make_session
from .parity import compare_detections
from .quantize import SETTINGS, quantize_graph

SUMMARY_NAME = "deploy.json"
PATHS = {"dense": "network (backbone, neck, dense head outputs) exported with torch.onnx; the "
                  "head's own mmdet predict_by_feat (decoding, NMS) on the ONNX Runtime outputs",
         "two_stage": "features + RPN graph and RoI head graph exported with torch.onnx; the "
                      "RPN's and the box head's own mmdet predict_by_feat (proposals, NMS) "
                      "between and after them"}


def cpu_name() -> str:
    """``<model name> (<n> cores)`` of this machine's CPU."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - not Linux
        pass
    return f"{name} ({os.cpu_count()} cores)"


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not Unix
        return []


def check_parity(model, runner: OrtDetector, items: list[dict]) -> dict:
    """PyTorch against ONNX Runtime on each item alone and on all of them as one batch."""
    ref, got = [], []
    batches = list(single_batches(model, items))
    if len(items) > 1:
        batches.append(preprocess(model, items))
    with torch.no_grad():
        for inputs, samples in batches:
            ref += model.predict(inputs, copy.deepcopy(samples))
            got += runner.predict(inputs, copy.deepcopy(samples))
    result = compare_detections(ref, got)
    result["images"], result["batched"] = len(items), len(items) > 1
    return result


def deploy_student(config: str, checkpoint: str, out_dir: str | os.PathLike, *,
                   calib: str | None = None, calib_num: int = 32, int8: bool = True,
                   parity_images: int = 4, evaluate_ap: bool = True, latency_images: int = 8,
                   latency_repeats: int = 3, warmup: int = 3, threads: int | None = None,
                   device: str = "cpu", cfg_options: dict | None = None,
                   progress: bool = True) -> dict:
    """Export ``checkpoint`` (a student of ``config``), check it and measure it.

    Args:
        config: The plain student config (mmdet).
        checkpoint: The exported student (``ds2d2-export-student``'s output, or any mmdet
            checkpoint of ``config``).
        out_dir: Where ``<graph>.onnx``, ``<graph>.int8.onnx`` and ``deploy.json`` go.
        calib: Folder of calibration images (default: the config's train split).
        calib_num: Calibration images.
        int8: Quantize to INT8 and measure it.
        parity_images: Test images of the parity check.
        evaluate_ap: Score every backend on the test split.
        latency_images: Test images timed per backend (0: no latency).
        latency_repeats: Rounds over them.
        warmup: Untimed calls before timing.
        threads: torch and ONNX Runtime intra-op threads (default: every core).
        device: ``cpu`` or ``cuda`` (ONNX Runtime's CUDA provider, the model on the GPU).

    Returns:
        The summary written to ``deploy.json``.

    Raises:
        ConfigError, CheckpointError: Bad inputs (named), before anything is computed.
        ParityError: ONNX Runtime and PyTorch disagree beyond the tolerances.
    """
    threads = threads or os.cpu_count() or 1
    if calib is not None:
        folder_images(calib)  # a missing folder fails before the export
    torch.set_num_threads(threads)
    cfg, model, family = load_student(config, checkpoint, cfg_options, device)
    out = Path(out_dir)
    items = test_items(cfg, max(parity_images, latency_images, 1))
    sample_inputs, _ = preprocess(model, items[:1])
    graphs = export_graphs(model, family, sample_inputs)
    model.eval()
    fp32 = OrtDetector(model, {g.name: make_session(g.onnx_bytes, threads, device)
                               for g in graphs})
    parity = check_parity(model, fp32, items[:max(parity_images, 1)])
    if not parity["passed"]:
        raise ParityError(f"{checkpoint}: ONNX Runtime predictions differ from PyTorch's: "
                          f"{parity['unmatched']} unmatched detections on {parity['images']} "
                          f"images (tolerances {parity['box_tol_px']} px, "
                          f"{parity['score_tol']}); nothing written")
    files = {"fp32": {f"{g.name}.onnx": g.onnx_bytes for g in graphs}}
    backends = {"pytorch_fp32": lambda x, s: model.predict(x, s), "ort_fp32": fp32.predict}
    calibration = None
    if int8:
        record: dict[str, list] = {}
        cal_items = calibration_items(cfg, calib, calib_num)
        for inputs, samples in single_batches(model, cal_items):
            fp32.predict(inputs, samples, record=record)
        q_bytes = {g.name: quantize_graph(g.onnx_bytes, record[g.name]) for g in graphs}
        int8_runner = OrtDetector(model, {n: make_session(b, threads, device)
                                          for n, b in q_bytes.items()})
        inputs, samples = preprocess(model, items[:1])
        int8_runner.predict(inputs, samples)  # it builds and predicts
        files["int8"] = {f"{n}.int8.onnx": b for n, b in q_bytes.items()}
        backends["ort_int8"] = int8_runner.predict
        calibration = {"source": f"the folder {calib}" if calib else "the config's train split",
                       "images": len(cal_items), "settings": SETTINGS}
    ap = {}
    if evaluate_ap:
        for key, predict in backends.items():
            ap[key] = evaluate(cfg, model, predict, desc=f"AP {key}", progress=progress)
    latency = {}
    load_before = _load()
    if latency_images > 0:
        timed = list(single_batches(model, items[:latency_images]))
        for key, predict in backends.items():
            latency[key] = measure_latency(predict, timed, warmup, latency_repeats,
                                           desc=f"latency {key}", progress=progress)
    import onnxruntime

    summary = {
        "config": config, "checkpoint": str(checkpoint), "family": family,
        "model_type": type(model).__name__, "path": PATHS[family], "exporter": EXPORTER,
        "dynamic_axes": "batch, height, width" + (", RoI count" if family == "two_stage" else ""),
        "files": {kind: [str(out / name) for name in group] for kind, group in files.items()},
        "parity": parity, "calibration": calibration, "ap": ap, "latency": latency,
        "warmup": warmup,
        "machine": {"date": datetime.datetime.now(datetime.UTC).strftime(
                        "%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(), "device": device,
                    "threads": threads, "load_before": load_before, "load_after": _load(),
                    "torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    for group in files.values():
        for name, data in group.items():
            atomic_write_bytes(out / name, data)
    atomic_write_json(out / SUMMARY_NAME, summary, indent=2)
    return summary
