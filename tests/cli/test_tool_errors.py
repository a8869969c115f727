"""The tools turn the project's known errors into one message and exit code 1 (--debug keeps the
traceback), and refuse checkpoints that do not fit the model."""

from __future__ import annotations

import subprocess
import sys

import torch
from ds2d2_testlib import REPO, SYNTHETIC_FILES, build, placeholder_data, tiny_retinanet

DEMO = REPO / "configs" / "demo"


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_bad_distill_config_is_one_message_without_traceback(tmp_path):
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    args = ["tools/train.py", str(DEMO / "retina_distill_synthetic.py"), "--work-dir",
            str(tmp_path), "--cfg-options", *data, "model.distill_cfg.amplifiers.hihg=1.0",
            "model.teacher_ckpt=None", "model.amplifier_ckpt=None",
            "model.allow_random_teacher=True"]
    out = tool(*args)
    assert out.returncode == 1
    assert "error:" in out.stderr and "amplifiers: unknown keys ['hihg']" in out.stderr
    assert "Traceback" not in out.stderr and "--debug" in out.stderr
    debug = tool(*args, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_config_errors_come_before_checkpoint_checks(tmp_path):
    """A wrong distill_cfg is reported even when the stage checkpoints do not exist yet."""
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    out = tool("tools/train.py", str(DEMO / "retina_distill_synthetic.py"), "--work-dir",
               str(tmp_path), "--cfg-options", *data, "model.distill_cfg.explicit.lambda_low=-1",
               f"model.teacher_ckpt={tmp_path}/missing.pth")
    assert out.returncode == 1
    assert "distill_cfg.explicit.lambda_low must be finite and >= 0" in out.stderr


def test_test_tool_refuses_a_checkpoint_of_another_model(tmp_path):
    teacher = build(tiny_retinanet(width=16, num_classes=4))
    path = tmp_path / "teacher.pth"
    torch.save({"state_dict": teacher.state_dict()}, path)
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    out = tool("tools/test.py", str(DEMO / "retina_student_synthetic.py"), str(path),
               "--work-dir", str(tmp_path / "wd"), "--cfg-options", *data)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "teacher.pth" in out.stderr and "does not fit" in out.stderr
    assert "shape mismatches" in out.stderr and "Traceback" not in out.stderr


def test_resume_from_a_truncated_checkpoint_names_the_file(tmp_path):
    student = build(tiny_retinanet())
    path = tmp_path / "epoch_3.pth"
    torch.save({"state_dict": student.state_dict()}, path)
    path.write_bytes(path.read_bytes()[:200])
    data = placeholder_data(tmp_path / "data", **SYNTHETIC_FILES)
    out = tool("tools/train.py", str(DEMO / "retina_student_synthetic.py"), "--work-dir",
               str(tmp_path / "wd"), "--resume", str(path), "--cfg-options", *data)
    assert out.returncode == 1
    assert "epoch_3.pth" in out.stderr and "Traceback" not in out.stderr


def test_export_tool_reports_a_missing_checkpoint_the_same_way(tmp_path):
    out = tool("tools/export_student.py", str(tmp_path / "missing.pth"), str(tmp_path / "o.pth"))
    assert out.returncode == 1 and "missing.pth" in out.stderr
    assert "error:" in out.stderr and "Traceback" not in out.stderr
