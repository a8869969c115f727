"""Checkpoints written before the package layout changed (``tests/data/pre_layout``) load into
today's models and a run resumes from them: same weights, same optimizer state."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from ds2d2_testlib import REPO, build, tiny_retinanet

FIXTURES = REPO / "tests" / "data" / "pre_layout"
NUM_CLASSES = 4


def _distiller(teacher_fpn: int, distill: dict) -> dict:
    student = tiny_retinanet(width=4, fpn=8, num_classes=NUM_CLASSES)
    teacher = tiny_retinanet(width=4, fpn=teacher_fpn, num_classes=NUM_CLASSES)
    amp = dict(type="HighFrequencyAmplifier", detector=teacher)
    return dict(type="SpectralDistiller", student=student, teacher_config=dict(model=teacher),
                amplifier_config=dict(model=amp), allow_random_teacher=True, distill_cfg=distill)


CASES = {
    "ds2d2": (8, dict(explicit=dict(lambda_low=1.0, lambda_high=1.0))),
    "fgd": (16, dict(explicit=dict(type="FGDLoss"), amplifiers=dict(full=0.0, high=0.0))),
}


def _file_state(name: str) -> dict[str, torch.Tensor]:
    ckpt = torch.load(FIXTURES / f"{name}_epoch_1.pth", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


def _adapter_convs(model) -> torch.nn.ModuleList:
    return model.connector.convs


def _check_loaded(name: str) -> None:
    from ds2d2_mm.utils.checkpoint import load_checkpoint_checked

    model = build(_distiller(*CASES[name]))
    load_checkpoint_checked(model, str(FIXTURES / f"{name}_epoch_1.pth"), "pre-layout checkpoint")
    state = _file_state(name)
    student = model.student.state_dict()
    for key, value in state.items():
        if key.startswith("student."):
            assert torch.equal(student[key[len("student."):]], value), key
    convs = _adapter_convs(model)
    old = {k: v for k, v in state.items() if k.startswith("explicit.adapter.convs.")}
    assert old and len(old) == sum(len(list(c.parameters())) for c in convs)
    for key, value in old.items():
        index, param = key[len("explicit.adapter.convs."):].split(".")
        assert torch.equal(getattr(convs[int(index)], param), value), key
    if name == "fgd":  # the method's own parameters keep their keys
        own = model.explicit.state_dict()
        for key, value in state.items():
            if key.startswith("explicit.") and not key.startswith("explicit.adapter."):
                assert torch.equal(own[key[len("explicit."):]], value), key


def test_ds2d2_checkpoint_of_the_flat_layout_loads_strictly():
    _check_loaded("ds2d2")


def test_fgd_checkpoint_of_the_flat_layout_loads_strictly():
    _check_loaded("fgd")


CONFIG = """
default_scope = 'mmdet'
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = {model!r}
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True), dict(type='PackDetInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='SyntheticAerialDataset', data_root={data!r},
                 ann_file='annotations/train.json', data_prefix=dict(img=''), pipeline=pipeline,
                 filter_cfg=dict(filter_empty_gt=False)))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
default_hooks = dict(timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'), checkpoint=dict(type='CheckpointHook',
    interval=1), sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
log_processor = dict(type='LogProcessor', window_size=1, by_epoch=True)
randomness = dict(seed=0)
"""


def test_training_resumes_from_a_checkpoint_of_the_flat_layout(tmp_path):
    from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset

    data = ensure_synthetic_dataset(tmp_path / "data", num_train=4, num_val=2, img_size=64,
                                    seed=1)
    config = tmp_path / "ds2d2.py"
    config.write_text(CONFIG.format(model=_distiller(*CASES["ds2d2"]), data=f"{data}/"))
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "tools/train.py", str(config), "--work-dir", str(work),
                           "--resume", str(FIXTURES / "ds2d2_epoch_1.pth")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed epoch: 1, iter: 2" in proc.stdout + proc.stderr
    after = torch.load(work / "epoch_2.pth", map_location="cpu", weights_only=True)
    assert after["meta"]["epoch"] == 2 and after["meta"]["iter"] == 4
    before = torch.load(FIXTURES / "ds2d2_epoch_1.pth", map_location="cpu", weights_only=True)
    # the same parameters in the same order: every momentum buffer has its parameter's shape
    shapes_before = [s["momentum_buffer"].shape for s in before["optimizer"]["state"].values()]
    shapes_after = [s["momentum_buffer"].shape for s in after["optimizer"]["state"].values()]
    assert shapes_before == shapes_after
    assert sorted(k for k in after["state_dict"] if not k.startswith("student.")) == [
        "connector.convs.0.weight", "provenance_sha256"]
