"""Two processes (DDP, gloo on CPU) give the losses and the student's update of one process on
the same global batch; the frozen teacher and amplifiers take no part in the synchronisation;
tools/dist_train.sh runs the distiller in two processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO

HERE = Path(__file__).resolve().parent
TOL = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **env) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, OMP_NUM_THREADS="1", **env))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    script = str(HERE / "ddp_step.py")
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(free_port()), script, str(tmp_path / "ddp.pt")])
    run([sys.executable, script, str(tmp_path / "single.pt")])
    ddp, single = (torch.load(tmp_path / f"{n}.pt", weights_only=False) for n in ("ddp", "single"))
    assert ddp["world"] == 2 and single["world"] == 1
    assert set(ddp["losses"]) == set(single["losses"])
    for key in ("loss_exp_low", "loss_imp_full_cls", "loss_imp_high_reg", "loss_cls"):
        assert key in ddp["losses"], key
    for key, value in single["losses"].items():
        assert ddp["losses"][key] == pytest.approx(value, rel=TOL, abs=1e-7), key
    for key, start in single["before"].items():
        assert torch.equal(start, ddp["before"][key]), key  # same initial weights
        step_1 = single["after"][key] - start
        step_2 = ddp["after"][key] - start
        scale = step_1.abs().max().item()
        assert (step_1 - step_2).abs().max().item() <= TOL * max(scale, 1e-3), key
    moved = [k for k in single["before"] if not torch.equal(single["before"][k],
                                                             single["after"][k])]
    assert any(k.startswith("student.backbone") for k in moved)
    assert any(k.startswith("explicit.adapter") for k in moved)


@pytest.mark.slow
def test_dist_train_sh_runs_the_distiller_in_two_processes(tmp_path):
    from tiny_run import tiny_distill_config

    config = tiny_distill_config(tmp_path, epochs=1)
    work = tmp_path / "work"
    out = run(["bash", "tools/dist_train.sh", str(config), "2", "--work-dir", str(work)],
              PYTHON=sys.executable, PORT=str(free_port()),
              PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]))
    log = out.stdout + out.stderr
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    assert "GPU number: 2" in log  # mmengine's name for the world size
    assert "backend': 'gloo'" in log
    assert (work / "epoch_1.pth").is_file()
