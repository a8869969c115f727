"""Distributed runs on the CPU (gloo): two processes (DDP) give the losses and the student's
update of one process on the same global batch, the frozen teacher and amplifiers take no part in
the synchronisation, tools/dist_train.sh runs the distiller in two processes, and
tools/slurm_train.sh / slurm_test.sh run through a stand-in ``srun`` that starts the tasks
locally with Slurm's environment. (One file, so that a parallel test run never runs two of these
at once on the same ports.)"""

from __future__ import annotations

import os
import socket
import stat
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
    assert out.returncode == 0, failure(out.stdout + out.stderr)
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
    assert any(k.startswith("connector") for k in moved)


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


FAKE_SRUN = r"""#!/usr/bin/env bash
# stand-in for srun: records its arguments, starts --ntasks local tasks with Slurm's variables
echo "$@" > "$SRUN_LOG"
n=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ntasks=*) n=${1#--ntasks=} ;;
    -p|--partition) shift ;;
    -*) ;;
    *) break ;;
  esac
  shift
done
pids=()
for i in $(seq 0 $((n - 1))); do
  SLURM_PROCID=$i SLURM_NTASKS=$n SLURM_LOCALID=$i SLURM_NODELIST=node[1] "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
echo 127.0.0.1
"""


def failure(log: str) -> str:
    """The lines of ``log`` that say why a run failed, else its end."""
    keys = ("Error:", "error:", "Aborted", "terminate called", "what():", "Traceback")
    lines = [ln for ln in log.splitlines() if any(k in ln for k in keys)]
    return "\n".join(lines[-20:]) or log[-4000:]


def fake_slurm(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.slow
def test_slurm_scripts_train_and_test_with_two_tasks(tmp_path):
    from tiny_run import tiny_distill_config

    fake_slurm(tmp_path / "bin")
    config = tiny_distill_config(tmp_path, epochs=1)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
               PYTHON=sys.executable, GPUS="2", GPUS_PER_NODE="2", CPUS_PER_TASK="1",
               MASTER_PORT=str(free_port()), SRUN_LOG=str(tmp_path / "srun_train.txt"),
               OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE), str(REPO)]))
    work = tmp_path / "work"
    out = subprocess.run(["bash", "tools/slurm_train.sh", "part", "ds2d2", str(config),
                          str(work)], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, failure(log)
    srun_args = (tmp_path / "srun_train.txt").read_text()
    for needle in ("-p part", "--job-name=ds2d2", "--gres=gpu:2", "--ntasks=2",
                   "--ntasks-per-node=2", "--cpus-per-task=1", "--launcher=slurm"):
        assert needle in srun_args, needle
    assert "Distributed launcher: slurm" in log and "GPU number: 2" in log
    ckpt = work / "epoch_1.pth"
    assert ckpt.is_file()

    env.update(SRUN_LOG=str(tmp_path / "srun_test.txt"), MASTER_PORT=str(free_port()))
    student = REPO / "configs" / "demo" / "retina_student_synthetic.py"
    exported = tmp_path / "student.pth"
    subprocess.run([sys.executable, "tools/export_student.py", str(ckpt), str(exported)],
                   cwd=REPO, check=True, capture_output=True)
    data = tmp_path / "data"
    out = subprocess.run(["bash", "tools/slurm_test.sh", "part", "eval", str(student),
                          str(exported), "--cfg-options",
                          f"test_dataloader.dataset.data_root={data}/",
                          f"test_evaluator.ann_file={data}/annotations/val.json",
                          "test_dataloader.num_workers=0",
                          "test_dataloader.persistent_workers=False"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, failure(log)
    assert "Epoch(test)" in log and "Distributed launcher: slurm" in log, log[-3000:]
