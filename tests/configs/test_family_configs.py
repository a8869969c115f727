"""The detector-family configs (configs/families/, this project's extension): each trains one
iteration on CPU, each distiller points at its stages and gets the strategy of its pair, every
stage keeps its family's own mmdet / mmrotate schedule, and the demo's RTMDet-tiny is mmdet's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, build, load_config, make_batch, without_pretrained
from families_testlib import CPU_ROTATED_BOX_LOSS

FAMILIES = sorted((REPO / "configs" / "families").glob("*.py"))
ROTATED = [p for p in FAMILIES if p.name.startswith(("rotated_", "oriented_"))]
HORIZONTAL = [p for p in FAMILIES if p not in ROTATED]


def model_cfg(path: Path) -> dict:
    """The config's model for a CPU test: no downloads, no checkpoints, and (oriented
    students) mmrotate's GDLoss for RotatedIoULoss, which has no CPU kernel in mmcv."""
    model = without_pretrained(load_config(path).model.to_dict())
    if model["type"] == "SpectralDistiller":
        model.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model["type"] == "HighFrequencyAmplifier":
        model["teacher_ckpt"] = None
    inner = model.get("student") or model.get("detector") or model
    head = inner.get("bbox_head", {})
    if head.get("loss_bbox", {}).get("type") == "RotatedIoULoss":
        head["loss_bbox"] = dict(CPU_ROTATED_BOX_LOSS)
    return model


def train_one_iteration(model, batch) -> dict:
    model.train()
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v
                for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total), {k: v for k, v in losses.items()}
    total.backward()
    assert any(p.grad is not None for p in model.parameters())
    return losses


def test_teacher_and_amplifier_configs_exist_for_every_distiller():
    for path in FAMILIES:
        cfg = load_config(path)
        if cfg.model.type == "SpectralDistiller":
            for key in ("teacher_config", "amplifier_config"):
                assert Path(cfg.model[key]).is_file(), f"{path.name}: {key}"


@pytest.mark.parametrize("path", HORIZONTAL, ids=lambda p: p.name)
def test_one_training_iteration(path):
    model = build(model_cfg(path))
    losses = train_one_iteration(
        model, lambda m: make_batch(m, batch_size=2, size=64, num_classes=20))
    if type(model).__name__ == "SpectralDistiller":
        assert "loss_imp_full_cls" in losses and "loss_exp_low" in losses


#: Distiller configs -> the strategies of the student's pass and of the amplifiers.
STRATEGIES = {
    "rtmdet_l_tiny_dior.py": ("RTMDetStrategy", "RTMDetStrategy"),
    "rtmdet_l_s_dior.py": ("RTMDetStrategy", "RTMDetStrategy"),
    "fcos_r101_r18_dior.py": ("FCOSStrategy", "FCOSStrategy"),
    "atss_r101_r18_dior.py": ("ATSSStrategy", "ATSSStrategy"),
    "rotated_rtmdet_l_tiny_dota.py": ("RotatedRTMDetStrategy", "RotatedRTMDetStrategy"),
    "rotated_rtmdet_l_s_dota.py": ("RotatedRTMDetStrategy", "RotatedRTMDetStrategy"),
    "oriented_rcnn_r101_rotated_rtmdet_tiny_dota.py": ("RotatedRTMDetStrategy",
                                                        "TeacherRoIStrategy"),
    "oriented_rcnn_r101_rotated_rtmdet_s_dota.py": ("RotatedRTMDetStrategy",
                                                     "TeacherRoIStrategy"),
}


def test_every_distiller_config_is_named_here():
    assert {p.name for p in FAMILIES if load_config(p).model.type == "SpectralDistiller"} == \
        set(STRATEGIES)


@pytest.mark.parametrize("name", [n for n in STRATEGIES if not n.startswith(("rotated_",
                                                                              "oriented_"))])
def test_horizontal_distillers_take_their_familys_strategy(name):
    model = build(model_cfg(REPO / "configs" / "families" / name))
    assert (type(model.strategy).__name__, type(model.pair.amplifier_strategy).__name__) == \
        STRATEGIES[name]
    assert not model.pair.heterogeneous
    assert type(model.kd_reg).__name__ == "GIoULoss"


#: Each stage config and the family's own config whose schedule it keeps.
OWN = {"rtmdet_l": "mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py",
       "rtmdet_tiny": "mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
       "rtmdet_s": "mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py",
       "atss": "mmdet::atss/atss_r101_fpn_1x_coco.py",
       "fcos": "mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py",
       "rotated_rtmdet_l": "mmrotate::rotated_rtmdet/rotated_rtmdet_l-3x-dota.py",
       "rotated_rtmdet_tiny": "mmrotate::rotated_rtmdet/rotated_rtmdet_tiny-3x-dota.py",
       "rotated_rtmdet_s": "mmrotate::rotated_rtmdet/rotated_rtmdet_s-3x-dota.py"}


def unscoped(value):
    """``value`` without the ``_scope_`` keys that inheriting with ``mmdet::`` adds."""
    if isinstance(value, dict):
        return {k: unscoped(v) for k, v in value.items() if k != "_scope_"}
    if isinstance(value, (list, tuple)):
        return [unscoped(v) for v in value]
    return value


def own_config(path: Path) -> str:
    """The family config whose schedule a stage keeps: the teacher's for the teacher and its
    amplifier stage, the student's for the student and its distiller."""
    name = path.stem
    if name.startswith(("atss_", "fcos_")):
        return OWN[name.split("_")[0]]
    student = name.split("_")[-2]  # ..._<size>_<dataset>
    return OWN[("rotated_rtmdet_" if name.endswith("dota") else "rtmdet_")
               + ("l" if student in ("l", "hfamp") else student)]


@pytest.mark.parametrize("path", FAMILIES, ids=lambda p: p.name)
def test_the_schedule_is_the_familys_own(path):
    from ds2d2_mm.models.distillers.amplifiers import config_file

    ours = load_config(path)
    theirs = load_config(config_file(own_config(path), "family")[0])
    for key in ("train_cfg", "optim_wrapper", "param_scheduler", "auto_scale_lr"):
        assert unscoped(ours.get(key)) == unscoped(theirs.get(key)), (path.name, key)
    assert ours.train_dataloader.batch_size == theirs.train_dataloader.batch_size
    hooks = [h["type"] for h in ours.get("custom_hooks", [])]
    assert hooks == [h["type"] for h in theirs.get("custom_hooks", [])]


def test_demo_rtmdet_tiny_is_mmdets_rtmdet_tiny_but_for_what_its_comment_lists():
    from ds2d2_mm.models.distillers.amplifiers import config_file

    demo = load_config(REPO / "configs" / "demo" / "_rtmdet_tiny.py").rtmdet_tiny.to_dict()
    mmdet = load_config(config_file(OWN["rtmdet_tiny"], "rtmdet")[0]).model.to_dict()
    # what the comment lists: 4 classes, BN for SyncBN, random init, the demo's test_cfg
    assert demo["bbox_head"].pop("num_classes") == 4
    mmdet["bbox_head"].pop("num_classes")
    for part in ("backbone", "neck", "bbox_head"):
        assert demo[part].pop("norm_cfg") == dict(type="BN")
        assert mmdet[part].pop("norm_cfg")["type"] == "SyncBN"
    assert demo["backbone"].pop("init_cfg") is None
    assert mmdet["backbone"].pop("init_cfg")["type"] == "Pretrained"
    assert demo.pop("test_cfg") != mmdet.pop("test_cfg")
    assert demo == mmdet


# mmrotate's scope from here on (a module-scoped fixture)
@pytest.mark.parametrize("path", ROTATED, ids=lambda p: p.name)
def test_rotated_one_training_iteration(path, rotate_scope):
    from rotated_testlib import build_rot, rotated_batch

    cfg = load_config(path)
    assert cfg.default_scope == "mmrotate"
    assert cfg.test_evaluator.type == "DOTAWholeImageMetric" and "metric" not in cfg.test_evaluator
    model = build_rot(model_cfg(path))
    train_one_iteration(model, lambda m: rotated_batch(m, size=64))
    if path.name in STRATEGIES:
        names = (type(model.strategy).__name__, type(model.pair.amplifier_strategy).__name__)
        assert names == STRATEGIES[path.name]
        assert model.pair.heterogeneous == path.name.startswith("oriented_")
