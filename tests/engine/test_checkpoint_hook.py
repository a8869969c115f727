"""SafeCheckpointHook: an interrupted save never loses the previous checkpoint, last_checkpoint
only names complete files, and non-finite weights are never saved."""

from __future__ import annotations

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode="tensor"):
        out = self.linear(torch.stack(inputs))
        if mode == "loss":
            return {"loss": ((out.squeeze(1) - torch.stack(labels)) ** 2).mean()}
        return out


class ToyData(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]), labels=torch.tensor(float(i)))


def runner(work_dir, epochs: int, resume: bool = False, keep: int = 1) -> Runner:
    import ds2d2_mm  # noqa: F401  (registers the hook)

    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type="DefaultSampler",
                                                              shuffle=False),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(checkpoint=dict(type="SafeCheckpointHook", interval=1,
                                           max_keep_ckpts=keep)),
        resume=resume, default_scope="mmdet", experiment_name=f"toy{epochs}{resume}{keep}")


def fail_on_second_save(monkeypatch):
    """Make the 2nd checkpoint write stop half-way, as a full disk or a kill would."""
    import mmengine.runner.runner as runner_module

    real = runner_module.save_checkpoint
    calls = []

    def flaky(checkpoint, filename, **kwargs):
        calls.append(filename)
        if len(calls) == 2:
            with open(filename, "wb") as f:
                f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(28, "No space left on device")
        return real(checkpoint, filename, **kwargs)

    monkeypatch.setattr(runner_module, "save_checkpoint", flaky)
    return calls


def test_interrupted_save_keeps_the_previous_checkpoint_and_resume_works(tmp_path, monkeypatch):
    calls = fail_on_second_save(monkeypatch)
    first = runner(tmp_path, epochs=3)
    try:
        first.train()
    except OSError:
        pass
    else:
        raise AssertionError("the injected save failure did not happen")
    assert len(calls) == 2
    ckpt = tmp_path / "epoch_1.pth"
    assert ckpt.is_file()
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(ckpt)
    state = torch.load(ckpt, weights_only=False)
    assert state["meta"]["epoch"] == 1
    assert not (tmp_path / "epoch_2.pth").exists()
    assert list(tmp_path.glob(".epoch_2.pth.partial"))  # the broken write stayed a temporary
    monkeypatch.undo()

    again = runner(tmp_path, epochs=3, resume=True)
    again.train()
    assert again.iter == 6 and again.epoch == 3
    assert not list(tmp_path.glob(".*.partial"))
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == ["epoch_3.pth"]
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / "epoch_3.pth")


def test_max_keep_checkpoints_removes_old_ones_only_after_the_new_one_is_complete(tmp_path):
    r = runner(tmp_path, epochs=4, keep=2)
    r.train()
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == ["epoch_3.pth", "epoch_4.pth"]
    state = torch.load(tmp_path / "epoch_4.pth", weights_only=False)
    assert state["message_hub"]["runtime_info"]["keep_ckpt_ids"] == [3, 4]


def test_non_finite_weights_are_never_saved(tmp_path):
    import pytest

    r = runner(tmp_path, epochs=3)
    from mmengine.hooks import Hook

    class Poison(Hook):
        def after_train_epoch(self, runner):
            if runner.epoch == 1:  # the 2nd epoch, before the checkpoint hook saves it
                with torch.no_grad():
                    runner.model.linear.weight.fill_(float("nan"))

    r.register_hook(Poison(), priority="HIGHEST")
    with pytest.raises(FloatingPointError, match=r"linear\.weight.*epoch_1\.pth"):
        r.train()
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / "epoch_1.pth")
    assert not (tmp_path / "epoch_2.pth").exists()
    assert torch.isfinite(torch.load(tmp_path / "epoch_1.pth",
                                     weights_only=False)["state_dict"]["linear.weight"]).all()
