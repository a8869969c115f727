"""Tests of ds2d2_mm.tooling.report: the table, the outcome sentence, the three figures (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ds2d2_mm.tooling.pipeline import PRESETS
from ds2d2_mm.tooling.report import (
    format_duration,
    load_scalars,
    load_val_samples,
    metrics_table,
    outcome_sentence,
    plot_curves,
    plot_detections,
    write_report,
)
from ds2d2_mm.tooling.runs import REPO, RunResult

DEMO = PRESETS["demo"]
MIN_FIGURE_SIDE = 200  # pixels: a real figure, not an empty canvas
TASK_TERMS = ("loss_cls", "loss_bbox")
DISTILL_TERMS = ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                 "loss_imp_high_cls", "loss_imp_high_reg")


def coco_metrics(ap: float, ap50: float, aps: float = 0.1, full: bool = True) -> dict:
    out = {"coco/bbox_mAP": ap, "coco/bbox_mAP_50": ap50, "coco/bbox_mAP_s": aps}
    if full:
        out.update({"coco/bbox_mAP_75": ap / 2, "coco/bbox_mAP_m": ap, "coco/bbox_mAP_l": -1.0})
    return out


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path))
    assert img is not None
    assert min(img.shape[:2]) >= MIN_FIGURE_SIDE, img.shape
    assert img.std() > 1.0  # something is drawn


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------------------------
# Fixtures: tiny data, random-init checkpoints, fake training logs
# --------------------------------------------------------------------------------------------


def _write_dataset(root: Path) -> Path:
    """3 validation images of 64 px with boxes (the built-in generator, else hand-made)."""
    try:
        from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset
    except ImportError:  # pragma: no cover - the generator ships with the package
        ensure_synthetic_dataset = None
    if ensure_synthetic_dataset is not None:
        return ensure_synthetic_dataset(root, num_train=4, num_val=3, img_size=64)
    rng = np.random.default_rng(0)
    images, anns = [], []
    (root / "images" / "val").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i in range(3):
        name = f"images/val/{i:05d}.png"
        cv2.imwrite(str(root / name), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        images.append({"id": i + 1, "file_name": name, "width": 64, "height": 64})
        for j in range(2):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": j + 1,
                         "bbox": [5.0 + 20 * j, 8.0, 12.0, 10.0], "area": 120.0, "iscrowd": 0})
    cats = [{"id": k + 1, "name": f"c{k}"} for k in range(4)]
    (root / "annotations" / "val.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def _save_random_checkpoint(config: str, path: Path, seed: int) -> Path:
    from mmdet.registry import MODELS
    from mmengine.config import Config

    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(str(REPO / config)).model)
    model.init_weights()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


def _write_scalars(work_dir: Path, stamp: str, steps: range, terms: tuple[str, ...],
                   scale: float = 1.0) -> None:
    folder = work_dir / stamp / "vis_data"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for step in steps:
        rec = {"lr": 1e-3, "epoch": 1 + step // 10, "iter": step, "step": step}
        for k, term in enumerate(terms):
            # decaying, some over two decades (log axis), some flat
            rec[term] = scale * (1 + k) * (0.5 + 200.0 * np.exp(-step / 5.0) * (k % 2))
        rec["loss"] = sum(rec[t] for t in terms)
        lines.append(json.dumps(rec))
        if step % 10 == 9:  # a validation record in the same file
            lines.append(json.dumps({"coco/bbox_mAP": 0.1, "step": step // 10}))
    (folder / "scalars.json").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("report")
    data = _write_dataset(tmp / "data")
    root = tmp / "work"
    teacher_ckpt = _save_random_checkpoint(DEMO.teacher, root / "teacher" / "epoch_1.pth", 0)
    baseline_ckpt = _save_random_checkpoint(DEMO.baseline, root / "baseline" / "epoch_1.pth", 1)
    export = _save_random_checkpoint(DEMO.baseline, root / "distilled_student.pth", 2)
    _write_scalars(root / "baseline", "20250101_000000", range(0, 40), TASK_TERMS)
    # the distilled run was interrupted and resumed: two timestamp folders
    _write_scalars(root / "distilled", "20250101_010000", range(0, 25), TASK_TERMS + DISTILL_TERMS)
    _write_scalars(root / "distilled", "20250101_020000", range(20, 40),
                   TASK_TERMS + DISTILL_TERMS, scale=1.1)
    runs = {
        "teacher": RunResult("teacher", DEMO.teacher, root / "teacher", teacher_ckpt,
                             coco_metrics(0.40, 0.70), 125.0),
        "amplifier": RunResult("amplifier", DEMO.amplifier, root / "amplifier",
                               root / "amplifier" / "epoch_1.pth", coco_metrics(0.2, 0.45), 61.0),
        "baseline": RunResult("baseline", DEMO.baseline, root / "baseline", baseline_ckpt,
                              coco_metrics(0.25, 0.50), 3725.0),
        "distilled": RunResult("distilled", DEMO.distill, root / "distilled",
                               root / "distilled" / "epoch_1.pth", coco_metrics(0.27, 0.53), None),
    }
    return {"data": data, "root": root, "runs": runs, "export": export}


@pytest.fixture(scope="module")
def report(setup) -> Path:
    return write_report(setup["root"], setup["runs"], elapsed_s=4321.0,
                        student_export=setup["export"], data_root=setup["data"])


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


def test_outcome_beats():
    text = outcome_sentence(coco_metrics(0.25, 0.50), coco_metrics(0.27, 0.53))
    assert "AP50 +3.0 points (50.0 -> 53.0)" in text
    assert "AP +2.0 points (25.0 -> 27.0)" in text
    assert "beats the student baseline on both AP50 and AP" in text
    assert "does not" not in text


def test_outcome_does_not_beat():
    text = outcome_sentence(coco_metrics(0.25, 0.50), coco_metrics(0.24, 0.50))
    assert "AP50 +0.0 points" in text and "AP -1.0 points" in text
    assert "does not beat the student baseline" in text
    assert "beats the student" not in text


def test_outcome_mixed_names_the_metric_it_loses_on():
    text = outcome_sentence(coco_metrics(0.25, 0.50), coco_metrics(0.24, 0.52))
    assert "does not beat the student baseline on AP;" in text
    assert "ahead only on AP50" in text


def test_outcome_tiny_difference_is_not_a_win():
    # +0.04 points rounds to +0.0 in the table: not reported as a gain
    text = outcome_sentence(coco_metrics(0.25, 0.50), coco_metrics(0.2504, 0.5004))
    assert "does not beat" in text


def test_outcome_missing_metrics():
    text = outcome_sentence(coco_metrics(0.25, 0.50), {})
    assert "cannot be measured" in text and "distilled student" in text
    text = outcome_sentence({"coco/bbox_mAP": -1.0, "coco/bbox_mAP_50": -1.0}, {})
    assert "baseline and the distilled student" in text


def test_metrics_table_rows_columns_and_undefined(setup):
    table = metrics_table(setup["runs"])
    lines = table.splitlines()
    assert lines[0].split("|")[1:-1] == [" Model ", " AP ", " AP50 ", " AP75 ", " APs ", " APm ",
                                         " APl ", " Training time ", " Config "]
    rows = {line.split("|")[1].strip(): line for line in lines[2:]}
    assert list(rows) == ["Teacher", "Student baseline", "Distilled student (DS2D2)",
                          "High-frequency amplifier \u2020 (on high-frequency features)"]
    assert "| 25.0 | 50.0 | 12.5 | 10.0 | 25.0 | n/a | 1 h 02 min |" in rows["Student baseline"]
    assert "| 40.0 | 70.0 |" in rows["Teacher"] and "2 min 05 s" in rows["Teacher"]
    assert "reused (trained before)" in rows["Distilled student (DS2D2)"]


def test_metrics_table_optional_columns_only_when_present():
    runs = {"baseline": RunResult("baseline", "b.py", Path("b"),
                                  metrics=coco_metrics(0.1, 0.2, full=False))}
    header = metrics_table(runs).splitlines()[0]
    assert "AP75" not in header and "APm" not in header and "APs" in header


def test_format_duration():
    assert format_duration(None) == "-"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(245) == "4 min 05 s"
    assert format_duration(7385) == "2 h 03 min"


def test_load_scalars_newest_folder_wins_older_fill_in(setup):
    records = load_scalars(setup["root"] / "distilled")
    steps = [r["step"] for r in records]
    assert steps == list(range(40))  # 0..19 from the older folder, 20..39 from the newer one
    assert all("loss" in r for r in records)  # validation records dropped
    by_step = {r["step"]: r for r in records}
    assert by_step[21]["loss_cls"] == pytest.approx(1.1 * 0.5)  # the resumed (newer) values
    assert load_scalars(setup["root"] / "missing") == []


def test_load_scalars_skips_a_truncated_line(tmp_path):
    _write_scalars(tmp_path, "20250101_000000", range(3), TASK_TERMS)
    path = tmp_path / "20250101_000000" / "vis_data" / "scalars.json"
    path.write_text(path.read_text() + '{"loss": 1.0, "st')
    assert len(load_scalars(tmp_path)) == 3


def test_plot_curves_one_run_only(tmp_path, setup):
    out = plot_curves([], load_scalars(setup["root"] / "distilled"), tmp_path / "c.png")
    assert_png(out)
    with pytest.raises(ValueError, match="no training records"):
        plot_curves([], [], tmp_path / "d.png")


def test_load_val_samples(setup):
    samples = load_val_samples(DEMO.baseline, setup["data"], limit=3)
    assert len(samples) == 3
    assert all(s.path.is_file() for s in samples)
    assert samples[0].boxes.ndim == 2 and samples[0].boxes.shape[1] == 4
    assert len(samples[0].labels) == len(samples[0].boxes) > 0
    with pytest.raises(FileNotFoundError, match="val.json"):
        load_val_samples(DEMO.baseline, setup["data"] / "nowhere")


def test_plot_detections_draws_boxes_above_threshold(tmp_path, setup):
    samples = load_val_samples(DEMO.baseline, setup["data"], limit=2)
    out = plot_detections(DEMO.baseline, {"baseline": setup["runs"]["baseline"].checkpoint},
                          samples, tmp_path / "det.png", score_thr=0.0)
    assert_png(out)


# --------------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------------


def test_report_has_table_outcome_times_and_files(report, setup):
    text = report.read_text()
    assert report == setup["root"] / "report.md"
    for row in ("| Teacher |", "| Student baseline |", "| Distilled student (DS2D2) |",
                "| High-frequency amplifier \u2020 (on high-frequency features) |"):
        assert row in text, row
    assert "not a competitor" in text
    assert "beats the student baseline on both AP50 and AP" in text
    assert "AP50 +3.0 points" in text and "AP +2.0 points" in text
    assert "Total elapsed time of the pipeline: 1 h 12 min" in text
    assert str(setup["export"]) in text
    assert "could not be drawn" not in text, text
    assert no_temp_files(setup["root"])


@pytest.mark.parametrize("name", ["curves.png", "spectral.png", "detections.png"])
def test_report_figures_exist_and_are_linked(report, setup, name):
    assert_png(setup["root"] / "report" / name)
    assert f"](report/{name})" in report.read_text()


def test_report_survives_a_failing_figure_and_says_does_not_beat(setup, tmp_path):
    runs = dict(setup["runs"])
    teacher = runs["teacher"]
    runs["teacher"] = RunResult("teacher", teacher.config, teacher.work_dir,
                                tmp_path / "missing.pth", teacher.metrics, 1.0)
    base = runs["baseline"]
    runs["distilled"] = RunResult("distilled", DEMO.distill, tmp_path / "no_logs",
                                  setup["export"], coco_metrics(0.24, 0.49), 2.0)
    root = tmp_path / "work"
    path = write_report(root, runs, elapsed_s=10.0, student_export=setup["export"],
                        data_root=setup["data"])
    text = path.read_text()
    assert "| Student baseline |" in text and "| Distilled student (DS2D2) |" in text
    assert "does not beat the student baseline" in text
    assert "AP50 -1.0 points" in text and "AP -1.0 points" in text
    assert "The spectral figure could not be drawn" in text
    assert "missing.pth" in text
    assert not (root / "report" / "spectral.png").exists()
    # the other figures are drawn (curves from the baseline alone)
    assert_png(root / "report" / "curves.png")
    assert_png(root / "report" / "detections.png")
    assert base.checkpoint.is_file()
    assert no_temp_files(root)


def test_report_without_dataset_notes_the_image_figures(setup, tmp_path):
    path = write_report(tmp_path, setup["runs"], elapsed_s=1.0, student_export=setup["export"],
                        data_root=tmp_path / "no_data")
    text = path.read_text()
    assert text.count("could not be drawn") == 2  # spectral and detections; curves still drawn
    assert "FileNotFoundError" in text
    assert_png(tmp_path / "report" / "curves.png")
