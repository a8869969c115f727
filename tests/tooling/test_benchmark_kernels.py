"""Smoke test of the kernel sections of ds2d2-benchmark (rows present, not timings)."""

from __future__ import annotations

import importlib
import json

import pytest

DISW_CASES = {"50 boxes/img", "500 boxes/img", "2000 boxes/img"}
HAAR_CASES = {"P3 16x16", "P4 8x8", "P5 4x4", "P6 2x2", "P7 1x1", "sum"}


@pytest.fixture(scope="module")
def benchmark():
    return importlib.import_module("ds2d2_mm.cli.benchmark")


def test_kernel_sections_small(benchmark, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rows = benchmark.main(
        ["--sections", "disw,haar", "--device", "cpu", "--small", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved["rows"] == rows and saved["meta"]["small"] is True

    disw = {r["case"]: r for r in rows if r["section"] == "disw"}
    haar = {r["case"]: r for r in rows if r["section"] == "haar"}
    assert set(disw) == DISW_CASES and set(haar) == HAAR_CASES
    assert len(rows) == len(DISW_CASES) + len(HAAR_CASES)
    for row in disw.values():
        assert {"vectorised_ms", "loop_ms", "speedup"} <= set(row)
        assert row["vectorised_ms"] > 0 and row["loop_ms"] > 0
    for row in haar.values():
        assert {"haar_ms", "pytorch_wavelets_ms", "speedup"} <= set(row)
    levels = [r for case, r in haar.items() if case != "sum"]
    assert haar["sum"]["haar_ms"] == pytest.approx(sum(r["haar_ms"] for r in levels))

    printed = capsys.readouterr().out
    assert "== disw" in printed and "== haar" in printed and "2000 boxes/img" in printed


def test_unknown_section_is_rejected(benchmark):
    with pytest.raises(SystemExit):
        benchmark.main(["--sections", "nope", "--small"])


@pytest.mark.slow
def test_step_and_breakdown_sections_small(benchmark, capsys):
    rows = benchmark.main(["--sections", "step,breakdown", "--device", "cpu", "--small",
                           "--warmup", "0", "--budget-s", "0"])
    step = [r for r in rows if r["section"] == "step"]
    assert [(r["case"].split()[0], r["boxes/img"]) for r in step] == [
        ("retina", 60), ("retina", 500), ("faster_rcnn", 60), ("faster_rcnn", 500)]
    for row in step:
        assert row["student_ms"] > 0 and row["distill_ms"] > 0
        assert row["ratio"] == pytest.approx(row["distill_ms"] / row["student_ms"])
    parts = [r["case"] for r in rows if r["section"] == "breakdown"]
    assert parts[0].startswith("student pass") and parts[-1].startswith("whole distillation")
    assert any("DISW" in p for p in parts) and any("high amplifier" in p for p in parts)
    printed = capsys.readouterr().out
    assert "== step" in printed and "== breakdown" in printed
