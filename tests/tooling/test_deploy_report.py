"""The deployment rows of the demo report (from a deploy.json fixture), and the pipeline's
deployment stage: its command, and the skip when the same checkpoint was measured before."""

from __future__ import annotations

import json

from ds2d2_mm.apis.deploy.report import deployment_table, markdown_section

SUMMARY = {
    "config": "configs/demo/retina_student_synthetic.py", "checkpoint": "student.pth",
    "family": "dense", "model_type": "RetinaNet", "path": "network exported with torch.onnx",
    "exporter": "torch.onnx.export(dynamo=False), opset 17",
    "files": {"fp32": ["out/model.onnx"], "int8": ["out/model.int8.onnx"]},
    "parity": {"passed": True, "images": 4, "detections": 310, "unmatched": 0,
               "max_box_diff_px": 1.5e-5, "max_score_diff": 6e-8, "box_tol_px": 1e-3,
               "score_tol": 1e-4},
    "calibration": {"source": "the config's train split", "images": 32,
                    "settings": "QDQ, per-channel INT8 weights"},
    "ap": {"pytorch_fp32": {"coco/bbox_mAP": 0.412, "coco/bbox_mAP_50": 0.701},
           "ort_fp32": {"coco/bbox_mAP": 0.412, "coco/bbox_mAP_50": 0.701},
           "ort_int8": {"coco/bbox_mAP": 0.398, "coco/bbox_mAP_50": 0.689}},
    "latency": {key: {"median_ms": ms, "p90_ms": ms * 1.25, "mean_ms": ms, "calls": 24,
                      "images": 8, "input_shape": [1, 3, 192, 192]}
                for key, ms in (("pytorch_fp32", 20.0), ("ort_fp32", 12.5),
                                ("ort_int8", 8.0))},
    "warmup": 3,
    "machine": {"date": "2026-12-03 16:00 UTC", "cpu": "Xeon (2 cores)", "device": "cpu",
                "threads": 2, "load_before": [1.5, 1.2, 1.0], "load_after": [1.6, 1.2, 1.0]},
}
ROWS = ["| PyTorch fp32 | 41.2 | 70.1 | 20.00 | 25.00 |",
        "| ONNX Runtime fp32 | 41.2 | 70.1 | 12.50 | 15.62 |",
        "| ONNX Runtime INT8 | 39.8 | 68.9 | 8.00 | 10.00 |"]


def test_deployment_table_rows():
    table = deployment_table(SUMMARY).splitlines()
    assert table[0] == "| Model | AP (%) | AP50 (%) | median (ms) | p90 (ms) |"
    assert table[2:] == ROWS


def test_deployment_table_without_int8_or_ap():
    summary = dict(SUMMARY, ap={}, latency={k: v for k, v in SUMMARY["latency"].items()
                                            if k != "ort_int8"})
    table = deployment_table(summary).splitlines()
    assert table[0] == "| Model | median (ms) | p90 (ms) |"
    assert [row.split(" | ")[0] for row in table[2:]] == ["| PyTorch fp32", "| ONNX Runtime fp32"]


def test_section_states_parity_machine_threads_and_calibration():
    text = "\n".join(markdown_section(SUMMARY))
    assert "Parity ONNX Runtime fp32 vs PyTorch fp32 passed on 4 test images" in text
    assert "max box difference 1.50e-05 px (tolerance 0.001)" in text
    assert "Measured 2026-12-03 16:00 UTC on Xeon (2 cores), device cpu, 2 threads" in text
    assert "load average 1.5 before" in text and "input 1x3x192x192" in text
    assert "calibrated on 32 images of the config's train split" in text


def test_report_has_the_deployment_rows(tmp_path):
    from ds2d2_mm.tooling.report import write_report

    report = write_report(tmp_path, {}, elapsed_s=5.0, student_export=tmp_path / "s.pth",
                          deployment=SUMMARY)
    text = report.read_text()
    assert "## Deployment (ONNX Runtime)" in text
    for row in ROWS:
        assert row in text
    assert "## Deployment" not in write_report(tmp_path / "none", {}, elapsed_s=5.0,
                                               student_export=tmp_path / "s.pth").read_text()


def test_pipeline_deploy_stage_command_and_skip(tmp_path, monkeypatch, capsys):
    from ds2d2_mm.tooling.pipeline import DEMO_DEPLOY, PRESETS, Pipeline
    from ds2d2_mm.tooling.runs import RunResult

    pipe = Pipeline(PRESETS["demo"], work_root=tmp_path, extra_options=["a=1"])
    student = tmp_path / "distilled_student.pth"
    exported = RunResult(name="distilled", config=PRESETS["demo"].baseline,
                         work_dir=tmp_path / "distilled_student", checkpoint=student)
    commands = []

    def fake_run(cmd):
        commands.append(cmd)
        out = tmp_path / "deploy"
        out.mkdir(exist_ok=True)
        (out / "deploy.json").write_text(json.dumps(dict(SUMMARY, checkpoint=str(student))))

    monkeypatch.setattr(pipe, "run_cmd", fake_run)
    assert pipe.deploy(exported)["family"] == "dense"
    cmd = commands[0]
    assert cmd[1:3] == ["-m", "ds2d2_mm.cli.deploy"] and cmd[4] == str(student)
    assert cmd[cmd.index("--out-dir") + 1] == str(tmp_path / "deploy")
    assert " ".join(DEMO_DEPLOY) in " ".join(cmd) and cmd[-2:] == ["--cfg-options", "a=1"]
    assert pipe.deploy(exported)["checkpoint"] == str(student)  # measured before: no command
    assert len(commands) == 1 and "deploy: measured before" in capsys.readouterr().out
    assert Pipeline(PRESETS["retina_dior"], work_root=tmp_path).deploy(exported) is None
    assert Pipeline(PRESETS["demo"], work_root=tmp_path, deploy=False).deploy(exported) is None


def test_parity_sentence_says_when_nothing_was_compared():
    from ds2d2_mm.apis.deploy.report import parity_sentence

    empty = dict(SUMMARY["parity"], detections=0, unmatched=0, max_box_diff_px=0.0,
                 max_score_diff=0.0, batched=True)
    assert parity_sentence(empty) == (
        "Parity ONNX Runtime fp32 vs PyTorch fp32 on 4 test images, one by one and as one "
        "batch: neither detects anything above the score threshold, so the check compared no "
        "boxes.")
