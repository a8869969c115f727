"""The deployment summary as tables: markdown (report, docs) and the terminal."""

from __future__ import annotations

from collections.abc import Mapping

#: Backends in table order, with their row labels.
BACKENDS = (("pytorch_fp32", "PyTorch fp32"), ("ort_fp32", "ONNX Runtime fp32"),
            ("ort_int8", "ONNX Runtime INT8"))


def ap_columns(metrics: Mapping[str, float]) -> list[tuple[str, str]]:
    """(column label, metric key) of the AP columns: COCO's AP and AP50, else every ``mAP``
    key (e.g. VOC's), else every key."""
    if "coco/bbox_mAP" in metrics:
        cols = [("AP", "coco/bbox_mAP")]
        if "coco/bbox_mAP_50" in metrics:
            cols.append(("AP50", "coco/bbox_mAP_50"))
        return cols
    keys = [k for k in metrics if k.endswith("mAP")] or list(metrics)
    return [(k.split("/")[-1], k) for k in keys]


def _fmt(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def parity_sentence(parity: Mapping) -> str:
    """One line on the parity check."""
    verdict = "passed" if parity["passed"] else "FAILED"
    how = ", one by one and as one batch" if parity.get("batched") else ""
    if parity["detections"] == 0 and parity["unmatched"] == 0:
        return (f"Parity ONNX Runtime fp32 vs PyTorch fp32 on {parity['images']} test "
                f"images{how}: neither detects anything above the score threshold, so the "
                "check compared no boxes.")
    return (f"Parity ONNX Runtime fp32 vs PyTorch fp32 {verdict} on {parity['images']} test "
            f"images{how} ({parity['detections']} detections after NMS in all, "
            f"{parity['unmatched']} "
            f"unmatched): max box difference {parity['max_box_diff_px']:.2e} px (tolerance "
            f"{parity['box_tol_px']:g}), max score difference {parity['max_score_diff']:.2e} "
            f"(tolerance {parity['score_tol']:g}), same labels.")


def deployment_table(summary: Mapping) -> str:
    """Markdown table: one row per backend, AP (%) and per-image latency (ms)."""
    ap = summary.get("ap") or {}
    lat = summary.get("latency") or {}
    first = next((m for m in ap.values() if m), {})
    cols = ap_columns(first) if first else []
    head = ["Model", *[f"{label} (%)" for label, _ in cols], "median (ms)", "p90 (ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1))
             + "|"]
    for key, label in BACKENDS:
        if key not in ap and key not in lat:
            continue
        metrics, timing = ap.get(key) or {}, lat.get(key) or {}
        cells = [label, *[_fmt(metrics.get(k), 100.0) for _, k in cols],
                 _fmt(timing.get("median_ms"), digits=2), _fmt(timing.get("p90_ms"), digits=2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measurement_sentence(summary: Mapping) -> str:
    """Where and how the latency was measured."""
    m = summary.get("machine", {})
    lat = summary.get("latency") or {}
    one = next(iter(lat.values()), {})
    shape = "x".join(str(s) for s in one.get("input_shape", [])) or "-"
    load = m.get("load_before", ["-"])
    return (f"Measured {m.get('date', '-')} on {m.get('cpu', '-')}, device {m.get('device', '-')}, "
            f"{m.get('threads', '-')} threads (torch and ONNX Runtime intra-op), load average "
            f"{load[0] if load else '-'} before; latency per image (batch 1, input {shape}, "
            f"network + mmdet post-processing), {one.get('calls', '-')} timed calls on "
            f"{one.get('images', '-')} test images after {summary.get('warmup', '-')} warm-up "
            f"calls; AP on the config's test split with its evaluator.")


def markdown_section(summary: Mapping, heading: str = "##") -> list[str]:
    """The report's deployment section (lines)."""
    files = summary.get("files", {})
    names = ", ".join(f"`{f}`" for group in files.values() for f in group)
    cal = summary.get("calibration") or {}
    lines = [f"{heading} Deployment (ONNX Runtime)", "",
             f"Family `{summary['family']}` ({summary['model_type']}): {summary['path']}; "
             f"exporter {summary['exporter']}.", "", parity_sentence(summary["parity"]), "",
             deployment_table(summary), "", measurement_sentence(summary), ""]
    if cal:
        lines += [f"INT8: {cal['settings']}, calibrated on {cal['images']} images of "
                  f"{cal['source']}.", ""]
    lines += [f"Files: {names}.", ""]
    return lines
