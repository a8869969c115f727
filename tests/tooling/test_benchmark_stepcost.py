"""Structure of the ``stepcost`` benchmark section on tiny widths (rows, floors, JSON written
after every round, a reference tree); not its timings."""

from __future__ import annotations

import importlib
import json
import subprocess

import pytest

from ds2d2_mm.tooling import stepcost

SMALL = ["--sections", "stepcost", "--small", "--device", "cpu"]
VARIANTS = {"student", "distilled", "explicit", "full-amp", "high-amp"}


@pytest.fixture(scope="module")
def benchmark():
    return importlib.import_module("ds2d2_mm.cli.benchmark")


def test_one_round_gives_rows_with_floor_and_ratio(benchmark, tmp_path, monkeypatch, capsys):
    out = tmp_path / "stepcost.json"
    written = []
    original = stepcost.JsonSink.write

    def spy(self, rows, done=False):
        written.append(([dict(r) for r in rows], done))
        original(self, rows, done)

    monkeypatch.setattr(stepcost.JsonSink, "write", spy)
    rows = benchmark.main([*SMALL, "--detector", "retina", "--rounds", "2", "--json", str(out)])
    steps = [r for r in rows if r["section"] == "stepcost"]
    assert {r["variant"] for r in steps} == VARIANTS
    for row in steps:
        assert row["source"] == stepcost.HERE and row["rounds"] == 2
        assert row["step_min_s"] <= row["step_s"] <= row["step_max_s"]
        assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
        assert row["over"] == pytest.approx(row["ratio"] / row["floor"] - 1)
    by = {r["variant"]: r for r in steps}
    assert by["student"]["ratio"] == 1.0 and by["student"]["floor"] == 1.0
    # the floor adds the teacher, then three head forwards per amplifier
    assert 1.0 < by["explicit"]["floor"] < by["full-amp"]["floor"] < by["distilled"]["floor"]
    (flops,) = [r for r in rows if r["section"] == "stepcost flops"]
    step = 3 * flops["student_fwd_gflop"]
    assert by["distilled"]["floor"] == pytest.approx(
        (step + flops["teacher_gflop"] + 3 * flops["full_head_gflop"]
         + 3 * flops["high_head_gflop"]) / step)
    phases = {r["phase"] for r in rows if r["section"] == "stepcost phases"
              and r["variant"] == "distilled"}
    assert {"backward", "forward / teacher forward", "forward / explicit stream",
            "forward / amplifier high / head pass (student)",
            "forward / amplifier full / box decoding"} <= phases

    # written after each round (the first with one round done), then complete
    round_writes = [w for w, done in written if any(r.get("rounds") for r in w)]
    assert {r["rounds"] for r in round_writes[0] if r["section"] == "stepcost"} == {1}
    assert written[-1][1] is True
    saved = json.loads(out.read_text())
    assert saved["rows"] == rows and saved["meta"]["stepcost"]["rounds"] == 2
    printed = capsys.readouterr().out
    assert "-- stepcost flops --" in printed and "-- stepcost phases --" in printed


def test_faster_rcnn_counts_the_sampled_rois(benchmark):
    rows = benchmark.main([*SMALL, "--detector", "faster_rcnn", "--variants", "distilled"])
    (flops,) = [r for r in rows if r["section"] == "stepcost flops"]
    assert flops["rois"] > 0 and flops["full_head_gflop"] > 0
    assert {r["variant"] for r in rows if r["section"] == "stepcost"} == {"student",
                                                                          "distilled"}


def test_compare_ref_runs_the_revision_beside_this_tree(benchmark):
    root = stepcost.repo_root()
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True).returncode:
        pytest.skip("not a git checkout")
    before = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True,
                            text=True).stdout
    rows = benchmark.main([*SMALL, "--detector", "retina", "--variants", "distilled",
                           "--compare-ref", "HEAD"])
    sources = {(r["source"], r["variant"]) for r in rows if r["section"] == "stepcost"}
    refs = {s for s, _ in sources if s != stepcost.HERE}
    assert len(refs) == 1 and next(iter(refs)).startswith("ref HEAD")
    assert {v for _, v in sources} == {"student", "distilled"} and len(sources) == 4
    after = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True,
                           text=True).stdout
    assert after == before  # the scratch worktree is gone


@pytest.mark.parametrize("argv,match", [
    (["--variants", "nope"], "--variants: unknown"),
    (["--compile"], "are GPU options"),
    (["--precisions", "amp"], "are GPU options"),
    (["--rounds", "0"], "--rounds must be >= 1"),
    (["--compare-ref", "no-such-revision-xyz"], "not a revision of the checkout"),
])
def test_bad_options_refused_naming_them(benchmark, argv, match, capsys):
    assert benchmark.run([*SMALL, *argv]) == 2
    assert match in capsys.readouterr().err
