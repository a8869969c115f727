"""A distillation run killed with SIGKILL in the middle of an epoch resumes from its last
checkpoint with exactly that state, sees the data in the order of an uninterrupted run, and ends
bit for bit where the uninterrupted run ends (CPU, tiny demo distiller)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO

HERE = Path(__file__).resolve().parent
EPOCHS, ITERS_PER_EPOCH = 3, 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tiny_run import tiny_distill_config

    root = tmp_path_factory.mktemp("resume")
    config = tiny_distill_config(root, epochs=EPOCHS, probe=True)
    return root, config, str(root / "teacher.pth")


def _env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]), **extra)


def _train(config, work_dir, *args, **env):
    return subprocess.run([sys.executable, "tools/train.py", str(config), "--work-dir",
                           str(work_dir), *args], cwd=REPO, env=_env(**env),
                          capture_output=True, text=True)


def _iters(work_dir: Path) -> list[dict]:
    path = work_dir / "probe_iters.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_same(a, b, where=""):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_restores_the_checkpoint_exactly(setup):
    root, config, teacher = setup
    # the uninterrupted run
    whole = root / "whole"
    out = _train(config, whole)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(_iters(whole)) == EPOCHS * ITERS_PER_EPOCH

    # the same run, killed in the middle of its last epoch (after iteration 5 of 6)
    killed = root / "killed"
    proc = subprocess.Popen([sys.executable, "tools/train.py", str(config), "--work-dir",
                             str(killed)], cwd=REPO, env=_env(PROBE_PAUSE_AT_ITER="5"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(_iters(killed)) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert len(_iters(killed)) == 5, "the run did not reach the pause"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last = (killed / "last_checkpoint").read_text().strip()
    assert last.endswith("epoch_2.pth")

    resumed = _train(config, killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ckpt = _load(Path(last))
    probe = _load(killed / "probe_resumed.pt")
    # exactly the checkpoint's student and adapter weights, optimizer and scheduler state
    state = ckpt["state_dict"]
    _assert_same(probe["state_dict"], state, "state_dict")
    # no teacher inside, only the digests of the teacher and amplifier files
    assert all(k.startswith(("student.", "connector.", "explicit.")) for k in state
               if k != "provenance_sha256")
    _assert_same(probe["optimizer"], ckpt["optimizer"], "optimizer")
    _assert_same(probe["param_schedulers"], ckpt["param_schedulers"], "schedulers")
    assert (probe["iter"], probe["epoch"]) == (ckpt["meta"]["iter"], ckpt["meta"]["epoch"]) == (
        4, 2)
    assert probe["seed"] == ckpt["meta"]["seed"]
    from ds2d2_mm.utils.checkpoint import digest_hex, file_sha256

    assert digest_hex(state["provenance_sha256"][0]) == file_sha256(teacher)

    # the data order of the resumed epoch is the uninterrupted run's
    after = [r for r in _iters(killed)[5:]]
    assert [r["ids"] for r in after] == [r["ids"] for r in _iters(whole)[4:]]
    # and the run ends where the uninterrupted one ends, bit for bit
    end_whole, end_killed = _load(whole / "epoch_3.pth"), _load(killed / "epoch_3.pth")
    _assert_same(end_killed["state_dict"], end_whole["state_dict"], "final state_dict")
    _assert_same(end_killed["optimizer"], end_whole["optimizer"], "final optimizer")
