"""Checkpoint save, load and resume through mmengine with torch >= 2.6 (weights_only loads)."""

from __future__ import annotations

import pytest
import torch
from ds2d2_testlib import build, tiny_retinanet
from mmengine.model import BaseModel
from torch import nn


class ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode="tensor"):
        out = self.linear(inputs)
        if mode == "loss":
            return {"loss": ((out.squeeze(-1) - labels) ** 2).mean()}
        return out


class ToyData(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, labels=x.sum())


def make_runner(work_dir, max_epochs, resume=False):
    from mmengine.runner import Runner

    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type="DefaultSampler", shuffle=True),
                              batch_size=4, collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        param_scheduler=dict(type="MultiStepLR", milestones=[1], by_epoch=True),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
        resume=resume, randomness=dict(seed=0), default_scope="mmdet",
        experiment_name=f"toy_{max_epochs}_{resume}")


def test_full_runner_checkpoint_resumes_with_safe_loading(tmp_path):
    import ds2d2_mm  # noqa: F401  (allow-lists mmengine's checkpoint contents)

    make_runner(tmp_path, 1).train()
    ckpt = torch.load(tmp_path / "epoch_1.pth", map_location="cpu", weights_only=True)
    assert {"message_hub", "optimizer", "param_schedulers", "meta"} <= set(ckpt)
    runner = make_runner(tmp_path, 2, resume=True)
    runner.train()
    assert runner.epoch == 2
    assert (tmp_path / "epoch_2.pth").is_file()


def test_untrusted_pickled_objects_still_fail_to_load(tmp_path):
    """Safety stays on: an arbitrary object in a checkpoint is refused."""
    import ds2d2_mm  # noqa: F401

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": ToyData()}, path)
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        torch.load(path, weights_only=True)


def test_teacher_checkpoint_errors_name_file_and_keys(tmp_path):
    from ds2d2_mm.utils.checkpoint import load_checkpoint_checked
    from ds2d2_mm.utils.errors import CheckpointError

    model = build(tiny_retinanet())
    with pytest.raises(CheckpointError, match="missing.pth.*teacher stage"):
        load_checkpoint_checked(model, str(tmp_path / "missing.pth"), "teacher checkpoint",
                                "It is written by the teacher stage")
    other = build(tiny_retinanet(width=16))
    path = tmp_path / "other.pth"
    torch.save({"state_dict": other.state_dict()}, path)
    with pytest.raises(CheckpointError, match="shape mismatches: backbone.conv1.weight"):
        load_checkpoint_checked(model, str(path), "teacher checkpoint")
    state = model.state_dict()
    state.pop("bbox_head.retina_cls.bias")
    state["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match="(?s)missing keys: bbox_head.retina_cls.bias.*"
                                              "unexpected keys: extra.weight"):
        load_checkpoint_checked(model, str(path), "teacher checkpoint")
    torch.save({"state_dict": model.state_dict()}, path)
    load_checkpoint_checked(build(tiny_retinanet()), str(path), "teacher checkpoint")


def test_distiller_with_missing_teacher_checkpoint_says_which_stage_writes_it(tmp_path):
    from ds2d2_testlib import distiller_cfg

    from ds2d2_mm.utils.errors import CheckpointError

    cfg = distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16))
    cfg.update(allow_random_teacher=False, teacher_ckpt=str(tmp_path / "t.pth"))
    with pytest.raises(CheckpointError, match="teacher checkpoint not found.*t.pth.*teacher stage"):
        build(cfg)


class _GetattrPayload:
    """Pickles as ``getattr(numpy.ndarray, 'tofile')``: a method that writes files."""

    def __reduce__(self):
        import numpy as np

        return (getattr, (np.ndarray, "tofile"))


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    import ds2d2_mm  # noqa: F401

    path = tmp_path / "getattr.pth"
    torch.save({"state_dict": {}, "x": _GetattrPayload()}, path)
    with pytest.raises(Exception, match="refused getattr"):
        torch.load(path, weights_only=True)


def test_runner_checkpoint_loads_in_a_fresh_process(tmp_path):
    """HistoryBuffer's statistics are allowed before any buffer exists in the process."""
    import subprocess
    import sys

    make_runner(tmp_path, 1).train()
    code = ("import ds2d2_mm, torch\n"
            f"ck = torch.load({str(tmp_path / 'epoch_1.pth')!r}, weights_only=True)\n"
            "print(sorted(ck))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "message_hub" in out.stdout
