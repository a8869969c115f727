"""A hook for the resume tests (imported by their configs through ``custom_imports``).

It writes ``probe_iters.jsonl`` (epoch, iteration and image ids of every training iteration) and,
when a run resumed, ``probe_resumed.pt`` (the state the runner holds before its first iteration).
With ``PROBE_PAUSE_AT_ITER=n`` it sleeps after iteration n, so that a test can kill the process
there.
"""

from __future__ import annotations

import json
import os
import time

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ResumeProbeHook(Hook):
    priority = "LOWEST"

    def before_train(self, runner) -> None:
        if not runner._has_loaded:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save({
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()
                           if torch.is_tensor(v)},
            "optimizer": runner.optim_wrapper.state_dict(),
            "param_schedulers": [s.state_dict() for s in runner.param_schedulers],
            "iter": runner.iter, "epoch": runner.epoch, "seed": runner.seed,
        }, os.path.join(runner.work_dir, "probe_resumed.pt"))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        ids = [s.img_id for s in data_batch["data_samples"]]
        with open(os.path.join(runner.work_dir, "probe_iters.jsonl"), "a") as f:
            f.write(json.dumps({"epoch": runner.epoch, "iter": runner.iter, "ids": ids}) + "\n")
        pause = os.environ.get("PROBE_PAUSE_AT_ITER")
        if pause is not None and runner.iter + 1 == int(pause):
            time.sleep(600)
