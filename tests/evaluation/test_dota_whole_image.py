"""DOTA on whole images: patch detections merged back (rotated NMS across patches), scored
against the source label files, and the Task1 submission files; tools/test.py end to end on a
tiny split DOTA folder."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("mmrotate")

from dota_testlib import CLASSES, metric, sample, write_labels  # noqa: E402

from ds2d2_mm.evaluation import (  # noqa: E402
    PatchDetections,
    merge_patch_detections,
    parse_patch_id,
    rbox_corners,
    write_task1_submission,
)

REPO = Path(__file__).resolve().parents[2]


def patch(img_id, boxes, scores, labels) -> PatchDetections:
    return PatchDetections(img_id=img_id, bboxes=np.array(boxes, dtype=np.float32).reshape(-1, 5),
                           scores=np.array(scores, dtype=np.float32),
                           labels=np.array(labels, dtype=np.int64))


def test_patch_names_give_the_source_image_and_the_corner():
    assert parse_patch_id("P0003__1024__824___0") == ("P0003", 824, 0)
    assert parse_patch_id("a__b__128__0___64") == ("a__b", 0, 64)  # '__' inside a name
    with pytest.raises(ValueError, match="'P0003.png' is not a DOTA patch name"):
        parse_patch_id("P0003.png")


def test_an_object_seen_by_two_overlapping_patches_is_kept_once():
    # Source image P1, patches of 100 px at x = 0 and x = 60 (40 px overlap). A plane at
    # (80, 50) in the image lies in both: patch A sees it at (80, 50) with 0.9, patch B at
    # (20.5, 50) with 0.8. A ship at (130, 30) is seen by B alone; a second ship far from it by A.
    a = patch("P1__100__0___0", [[80, 50, 20, 10, 0.3], [30, 70, 12, 6, -0.2]], [0.9, 0.7], [0, 1])
    b = patch("P1__100__60___0", [[20.5, 50, 20, 10, 0.3], [70, 30, 16, 8, 0.5]], [0.8, 0.6],
              [0, 1])
    empty = patch("P2__100__0___0", [], [], [])
    merged = merge_patch_detections([a, b, empty], num_classes=3, iou_thr=0.1)
    assert set(merged) == {"P1", "P2"}
    planes, ships, tanks = merged["P1"]
    np.testing.assert_allclose(planes, [[80, 50, 20, 10, 0.3, 0.9]], rtol=0, atol=1e-6)
    assert len(ships) == 2 and len(tanks) == 0
    np.testing.assert_allclose(ships[:, :2], [[30, 70], [130, 30]], atol=1e-6)  # shifted by x
    np.testing.assert_allclose(ships[:, 5], [0.7, 0.6], atol=1e-6)  # highest score first
    assert all(len(d) == 0 and d.shape == (0, 6) for d in merged["P2"])
    # the same plane seen without overlap of their boxes is two planes
    far = patch("P1__100__60___0", [[90, 50, 20, 10, 0.3]], [0.8], [0])
    assert len(merge_patch_detections([a, far], 3)["P1"][0]) == 2


def test_corners_are_those_of_mmrotate():
    from mmrotate.structures.bbox import rbox2qbox

    boxes = np.array([[50, 40, 30, 10, 0.4], [10, 20, 8, 8, -1.2], [0, 0, 5, 1, 0.0]])
    ours = rbox_corners(boxes).reshape(-1, 4, 2)
    theirs = rbox2qbox(torch.tensor(boxes, dtype=torch.float64)).numpy().reshape(-1, 4, 2)
    for o, t in zip(ours, theirs, strict=True):  # the same 4 points (order may differ)
        np.testing.assert_allclose(np.array(sorted(map(tuple, o))),
                                   np.array(sorted(map(tuple, t))), atol=1e-9)
        x, y = o[:, 0], o[:, 1]
        assert 0.5 * (x * np.roll(y, -1) - np.roll(x, -1) * y).sum() > 0  # clockwise, y down


def test_task1_submission_files(tmp_path):
    merged = {"P7": [np.array([[80, 50, 20, 10, 0.3, 0.91234]], np.float32),
                     np.zeros((0, 6), np.float32), np.zeros((0, 6), np.float32)],
              "P2": [np.array([[10, 10, 4, 2, 0.0, 0.5], [30, 30, 6, 6, 1.0, 0.25]], np.float32),
                     np.array([[5, 5, 2, 2, 0.0, 0.125]], np.float32),
                     np.zeros((0, 6), np.float32)]}
    out = tmp_path / "sub" / "Task1"
    zip_path = write_task1_submission(merged, CLASSES, out)
    assert zip_path == out / "Task1.zip"
    with zipfile.ZipFile(zip_path) as z:  # storage-tank has no detection: no (empty) file
        assert sorted(z.namelist()) == ["Task1_plane.txt", "Task1_ship.txt"]
    line = re.compile(r"^(P\d) (\d\.\d{4})( -?\d+\.\d{2}){8}$")
    planes = (out / "Task1_plane.txt").read_text().splitlines()
    assert [line.match(s).group(1) for s in planes] == ["P2", "P2", "P7"]
    assert [float(s.split()[1]) for s in planes] == [0.5, 0.25, 0.9123]
    corners = np.array(planes[2].split()[2:], dtype=float).reshape(4, 2)
    np.testing.assert_allclose(corners.mean(axis=0), [80, 50], atol=0.01)
    side = np.linalg.norm(corners[1] - corners[0])
    assert side == pytest.approx(20, abs=0.02)
    assert math.atan2(*(corners[1] - corners[0])[::-1]) == pytest.approx(0.3, abs=1e-3)
    assert not (out / "Task1_storage-tank.txt").exists()
    before = (out / "Task1_plane.txt").read_text()
    with pytest.raises(FileExistsError, match="already holds a DOTA submission"):
        write_task1_submission(merged, CLASSES, out)
    assert (out / "Task1_plane.txt").read_text() == before  # nothing already written is lost


def rect(cx, cy, w, h, a=0.0):
    return tuple(rbox_corners(np.array([[cx, cy, w, h, a]]))[0])


def test_whole_image_metric_scores_merged_patches_against_the_source_labels(tmp_path):
    ann = tmp_path / "labelTxt"
    write_labels(ann, "P1", [(rect(80, 50, 20, 10, 0.3), "plane", 0),
                             (rect(130, 30, 16, 8, 0.5), "ship", 0),
                             (rect(20, 20, 10, 10), "ship", 1)])  # difficult: ignored
    write_labels(ann, "P2", [(rect(40, 40, 30, 12), "storage-tank", 0)])
    perfect = [
        sample("P1__100__0___0", [[80, 50, 20, 10, 0.3]], [0.9], [0]),
        sample("P1__100__60___0", [[20, 50, 20, 10, 0.3], [70, 30, 16, 8, 0.5]], [0.8, 0.7],
               [0, 1]),
        sample("P2__100__0___0", [[40, 40, 30, 12, 0.0]], [0.6], [2]),
    ]
    m = metric(ann_dir=str(ann), outfile_prefix=str(tmp_path / "sub"))
    m.process({}, perfect)
    assert m.compute_metrics(m.results) == {"AP50": 1.0, "mAP": 1.0}
    assert (tmp_path / "sub" / "sub.zip").is_file()

    missed = perfect[:2] + [sample("P2__100__0___0", [[90, 90, 30, 12, 0.0]], [0.6], [2])]
    m = metric(ann_dir=str(ann))
    m.process({}, missed)
    result = m.compute_metrics(m.results)
    assert result["AP50"] == pytest.approx(2 / 3, abs=1e-4)  # the tank class scores 0


def test_whole_image_metric_names_what_is_missing(tmp_path):
    from ds2d2_mm.utils.errors import ConfigError

    m = metric(ann_dir=str(tmp_path / "nowhere"))
    m.process({}, [sample("P1__100__0___0", [], [], [])])
    with pytest.raises(ConfigError, match="nowhere is not a folder"):
        m.compute_metrics(m.results)
    (tmp_path / "labels").mkdir()
    m = metric(ann_dir=str(tmp_path / "labels"))
    m.process({}, [sample("P9__100__0___0", [], [], [])])
    with pytest.raises(ConfigError, match=r"no label file .*P9\.txt"):
        m.compute_metrics(m.results)
    with pytest.raises(ConfigError, match="format_only=True needs outfile_prefix"):
        metric(format_only=True)
    with pytest.raises(ConfigError, match="scoring needs ann_dir"):
        metric()


# ---------------------------------------------------------------------------------------------
# tools/test.py on a tiny split DOTA folder: whole-image mAP, and the submission of a test split
# ---------------------------------------------------------------------------------------------
TINY_CONFIG = """
_base_ = ['{repo}/configs/ds2d2/oriented_rcnn_r18_dota.py']
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                  bbox_head=dict(in_channels=16, fc_out_channels=32)),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=50)))
data_root = '{root}/split/'
test_pipeline = [
    dict(type='mmdet.LoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(64, 64), keep_ratio=True),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, ann_file='{ann_file}', data_prefix=dict(img_path='{split}/images/'),
    pipeline=test_pipeline))
test_evaluator = dict({evaluator})
"""


def make_source(folder: Path, names, with_labels: bool) -> None:
    import cv2

    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(folder / "images" / f"{name}.png"),
                    rng.integers(0, 255, (160, 200, 3), dtype=np.uint8))
        if with_labels:
            write_labels(folder / "labelTxt", name, [(rect(40, 40, 30, 12, 0.2), "plane", 0),
                                                     (rect(150, 110, 20, 20), "ship", 0)])


@pytest.fixture(scope="module")
def tiny_dota(tmp_path_factory):
    """A split tiny DOTA folder (val with labels, test without) and a random checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmrotate.registry import MODELS
    from mmrotate.utils import register_all_modules

    from ds2d2_mm.datasets import split_dota

    root = tmp_path_factory.mktemp("tiny_dota")
    make_source(root / "val", ["P0001", "P0002"], with_labels=True)
    make_source(root / "test", ["P0100"], with_labels=False)
    for split in ("val", "test"):
        split_dota(root / split, root / "split" / split, size=128, gap=32, progress=False)
    cfg_path = root / "tiny.py"
    cfg_path.write_text(TINY_CONFIG.format(repo=REPO, root=root, ann_file="val/annfiles/",
                                           split="val", evaluator=""))
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmrotate"):
        cfg = Config.fromfile(str(cfg_path))
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, root / "tiny.pth")
    return root


def run_test_tool(root: Path, cfg_text: str, name: str) -> subprocess.CompletedProcess:
    cfg = root / f"{name}.py"
    cfg.write_text(cfg_text)
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "test.py"), str(cfg), str(root / "tiny.pth"),
         "--work-dir", str(root / f"wd_{name}")],
        capture_output=True, text=True, timeout=600, cwd=root)


@pytest.mark.slow
def test_test_tool_scores_whole_val_images_and_writes_the_test_submission(tiny_dota):
    root = tiny_dota
    val = run_test_tool(root, TINY_CONFIG.format(
        repo=REPO, root=root, ann_file="val/annfiles/", split="val",
        evaluator=f"ann_dir='{root}/val/labelTxt/', outfile_prefix='{root}/val_sub'"), "val")
    assert val.returncode == 0, val.stdout[-3000:] + val.stderr[-3000:]
    log = val.stdout + val.stderr
    assert re.search(r"\d+ patches merged into 2 whole images", log)
    assert re.search(r"dota/AP50: \d\.\d+", log) and "dota/mAP" in log
    assert "| plane" in log and "| ship" in log  # the per-class table
    assert (root / "val_sub" / "val_sub.zip").is_file()

    test = run_test_tool(root, TINY_CONFIG.format(
        repo=REPO, root=root, ann_file="", split="test",
        evaluator=f"format_only=True, outfile_prefix='{root}/test_sub'"), "test")
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    files = sorted(p.name for p in (root / "test_sub").glob("Task1_*.txt"))
    assert files and (root / "test_sub" / "test_sub.zip").is_file()  # the classes detected
    with zipfile.ZipFile(root / "test_sub" / "test_sub.zip") as z:
        assert sorted(z.namelist()) == files
    assert all((root / "test_sub" / f).stat().st_size > 0 for f in files)  # no empty file
    lines = [s for f in (root / "test_sub").glob("Task1_*.txt") for s in f.read_text().splitlines()]
    assert lines and all(re.match(r"^P0100 \d\.\d{4}( -?\d+\.\d{2}){8}$", s) for s in lines)


# ---------------------------------------------------------------------------------------------
# tools/train.py: the Oriented R-CNN distiller config on split DOTA patches, given its teacher
# and amplifier checkpoints (tiny widths, random weights)
# ---------------------------------------------------------------------------------------------
TINY_DETECTOR = """dict(
    backbone=dict(depth=18, base_channels={width}, init_cfg=None),
    neck=dict(in_channels=[{width}, {w2}, {w4}, {w8}], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                  bbox_head=dict(in_channels=16, fc_out_channels=32)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=50)))"""


def tiny_detector(width: int) -> str:
    return TINY_DETECTOR.format(width=width, w2=2 * width, w4=4 * width, w8=8 * width)


TRAIN_DATA = """
data_root = '{root}/split/'
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, ann_file='val/annfiles/', data_prefix=dict(img_path='val/images/')))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, ann_file='val/annfiles/', data_prefix=dict(img_path='val/images/')))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
"""


@pytest.mark.slow
def test_train_tool_distils_an_oriented_rcnn_on_split_dota_patches(tiny_dota):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmrotate.registry import MODELS

    root = tiny_dota
    teacher_cfg, amp_cfg, distill_cfg = (root / f"{n}.py" for n in ("t", "amp", "distill"))
    configs = REPO / "configs" / "ds2d2"
    teacher_cfg.write_text(f"_base_ = ['{configs}/oriented_rcnn_r101_dota.py']\n"
                           f"model = {tiny_detector(16)}\n")
    amp_cfg.write_text(f"_base_ = ['{configs}/oriented_rcnn_r101_hfamp_dota.py']\n"
                       f"model = dict(detector={tiny_detector(16)}, teacher_config='{teacher_cfg}',"
                       f" teacher_ckpt='{root}/t.pth')\n")
    with DefaultScope.overwrite_default_scope("mmrotate"):
        torch.manual_seed(1)
        teacher = MODELS.build(Config.fromfile(str(teacher_cfg)).model)
        teacher.init_weights()
        torch.save({"state_dict": teacher.state_dict(), "meta": {}}, root / "t.pth")
        amp = MODELS.build(Config.fromfile(str(amp_cfg)).model)  # loads and records the teacher
        torch.save({"state_dict": amp.state_dict(), "meta": {}}, root / "amp.pth")
    distill_cfg.write_text(
        f"_base_ = ['{configs}/oriented_rcnn_r101_r18_dota.py']\n"
        f"model = dict(student={tiny_detector(8)}, teacher_config='{teacher_cfg}',\n"
        f"    teacher_ckpt='{root}/t.pth', amplifier_config='{amp_cfg}',\n"
        f"    amplifier_ckpt='{root}/amp.pth')\n" + TRAIN_DATA.format(root=root))
    work = root / "wd_distill"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), str(distill_cfg),
                           "--work-dir", str(work)],
                          capture_output=True, text=True, timeout=900, cwd=root)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    for term in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
                 "loss_imp_high_cls", "loss_imp_high_reg", "loss_rpn_cls", "loss_bbox"):
        assert re.search(rf"{term}: \d+\.\d+", log), term
    assert (work / "epoch_1.pth").is_file()
    assert re.search(r"dota/mAP: \d\.\d+", log)  # validation on patches after the epoch
