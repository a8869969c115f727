"""ds2d2-deploy end to end on a tiny student and data set: the files, parity, the three backends'
AP and latency; and its errors: one message naming the file or folder, exit code 1, nothing
written."""

from __future__ import annotations

import json

import pytest
import torch
from deploy_testlib import settle
from ds2d2_testlib import REPO

from ds2d2_mm.cli.deploy import run

STUDENT = str(REPO / "configs" / "demo" / "retina_student_synthetic.py")
DISTILL = str(REPO / "configs" / "demo" / "retina_distill_synthetic.py")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data (6 train, 3 val images of 64 px), a settled demo student and its distiller form."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    from ds2d2_mm.apis.runner import init_scope
    from ds2d2_mm.tooling.pipeline import data_root_options
    from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset

    root = tmp_path_factory.mktemp("deploy")
    data = ensure_synthetic_dataset(root / "data", num_train=6, num_val=3, img_size=64)
    cfg = Config.fromfile(STUDENT)
    init_scope(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    settle(model, size=192)
    student, distiller = root / "student.pth", root / "distiller.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, student)
    torch.save({"state_dict": {f"student.{k}": v for k, v in model.state_dict().items()}},
               distiller)
    options = data_root_options(data) + ["test_dataloader.batch_size=2"]
    return root, student, distiller, options


def deploy(*args: str) -> int:
    return run([*args, "--threads", "1", "--no-progress"])


def test_deploy_writes_models_and_measures_three_backends(setup, capsys):
    root, student, _, options = setup
    out = root / "out"
    rc = deploy(STUDENT, str(student), "--out-dir", str(out), "--calib-num", "4",
                "--parity-images", "2", "--latency-images", "2", "--latency-repeats", "1",
                "--warmup", "1", "--cfg-options", *options)
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["deploy.json", "model.int8.onnx",
                                                     "model.onnx"]
    summary = json.loads((out / "deploy.json").read_text())
    assert summary["family"] == "dense" and summary["model_type"] == "RetinaNet"
    assert summary["parity"]["passed"] and summary["parity"]["detections"] > 0
    assert summary["calibration"]["images"] == 4
    backends = ["pytorch_fp32", "ort_fp32", "ort_int8"]
    assert list(summary["ap"]) == backends and "coco/bbox_mAP" in summary["ap"]["ort_int8"]
    # fp32 ONNX Runtime scores what PyTorch scores (same detections)
    assert summary["ap"]["ort_fp32"] == pytest.approx(summary["ap"]["pytorch_fp32"], abs=1e-3)
    assert list(summary["latency"]) == backends
    for timing in summary["latency"].values():
        assert 0 < timing["median_ms"] <= timing["p90_ms"] and timing["calls"] == 2
        assert timing["input_shape"] == [1, 3, 192, 192]
    assert summary["machine"]["threads"] == 1
    printed = capsys.readouterr().out
    assert "| ONNX Runtime INT8 |" in printed and "Parity ONNX Runtime fp32 vs PyTorch" in printed


def _fails(capsys, *args: str) -> str:
    assert deploy(*args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_distiller_checkpoint_names_the_file_and_the_export_command(setup, capsys):
    root, _, distiller, options = setup
    out = root / "bad1"
    err = _fails(capsys, STUDENT, str(distiller), "--out-dir", str(out), "--cfg-options",
                 *options)
    assert f"'{distiller}' is a distiller checkpoint" in err
    assert f"ds2d2-export-student {distiller} student.pth" in err
    assert not out.exists()


def test_distiller_config_is_refused(setup, capsys):
    root, student, _, options = setup
    err = _fails(capsys, DISTILL, str(student), "--out-dir", str(root / "bad2"))
    assert "is a distillation config; pass the plain student config" in err
    assert not (root / "bad2").exists()


def test_missing_calibration_folder_is_named(setup, capsys):
    root, student, _, options = setup
    missing = root / "no_such_folder"
    err = _fails(capsys, STUDENT, str(student), "--out-dir", str(root / "bad3"), "--calib",
                 str(missing), "--cfg-options", *options)
    assert f"calibration folder not found: '{missing}'" in err
    assert not (root / "bad3").exists()


def test_missing_checkpoint_is_named(setup, capsys):
    root, _, _, _ = setup
    err = _fails(capsys, STUDENT, str(root / "nope.pth"), "--out-dir", str(root / "bad5"))
    assert f"student checkpoint not found: '{root / 'nope.pth'}'" in err


def test_checkpoint_of_another_model_is_named(setup, capsys, tmp_path):
    from ds2d2_testlib import build, tiny_retinanet

    root, _, _, options = setup
    other = tmp_path / "other.pth"
    torch.save({"state_dict": build(tiny_retinanet()).state_dict()}, other)
    err = _fails(capsys, STUDENT, str(other), "--out-dir", str(root / "bad6"))
    assert f"'{other}' does not fit '{STUDENT}': size mismatch" in err


def test_calibration_folder_is_used(setup, tmp_path):
    import shutil

    root, student, _, options = setup
    calib = tmp_path / "calib"
    calib.mkdir()
    for image in sorted((root / "data" / "images" / "train").glob("*.png"))[:3]:
        shutil.copy(image, calib / image.name)
    out = tmp_path / "out"
    assert deploy(STUDENT, str(student), "--out-dir", str(out), "--calib", str(calib),
                  "--no-eval", "--latency-images", "0", "--parity-images", "1",
                  "--cfg-options", *options) == 0
    summary = json.loads((out / "deploy.json").read_text())
    assert summary["calibration"] == {"source": f"the folder {calib}", "images": 3,
                                      "settings": summary["calibration"]["settings"]}
    assert summary["ap"] == {} and summary["latency"] == {}
    assert (out / "model.int8.onnx").stat().st_size > 0


def test_rotated_family_is_refused_by_name(setup, capsys, rotate_scope):  # last: sets the scope
    from mmengine.config import Config
    from rotated_testlib import tiny_rotated_retinanet

    root, student, _, _ = setup
    config = root / "rotated_student.py"
    Config(dict(default_scope="mmrotate", model=tiny_rotated_retinanet())).dump(str(config))
    err = _fails(capsys, str(config), str(student), "--out-dir", str(root / "bad4"))
    assert f"{config}: model.type='mmdet.RetinaNet' (head 'mmdet.RetinaHead'" in err
    assert "default_scope='mmrotate') is a rotated detector: it has no export path" in err
    assert not (root / "bad4").exists()
