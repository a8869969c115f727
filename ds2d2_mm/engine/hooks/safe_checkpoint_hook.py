"""A checkpoint hook whose interrupted saves never lose the previous checkpoint.

mmengine's ``CheckpointHook`` removes the oldest checkpoint before it writes the new one, writes
the new one in place and then points ``last_checkpoint`` at it: a kill or a full disk during the
save leaves a truncated newest file, possibly no other one (``max_keep_ckpts=1``), and a
``last_checkpoint`` that names a file that is missing or broken, so ``--resume`` fails.

:class:`SafeCheckpointHook` keeps mmengine's behaviour and options but orders the steps so that
every moment leaves a usable state: the checkpoint is written to a hidden temporary name in the
same folder, flushed to disk and renamed (atomic on POSIX file systems); ``last_checkpoint`` is
rewritten the same way; only then are checkpoints beyond ``max_keep_ckpts`` removed. Before a
save it refuses a state with non-finite weights (the previous checkpoint stays the last one), and
when training starts it removes temporaries that an interrupted save left behind.
"""

from __future__ import annotations

import os
import os.path as osp
from collections import deque
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ...utils.io import (
    atomic_write_text,
    remove_stale_temporaries,
    replace_atomically,
    temporary_name,
)

#: Suffix of the hidden temporary name a checkpoint is written under (``.<name>.partial``).
PARTIAL_SUFFIX = ".partial"


def partial_name(filename: str) -> str:
    """The hidden temporary name of checkpoint ``filename`` while it is being written."""
    return temporary_name(filename, PARTIAL_SUFFIX)


def nonfinite_tensors(state: dict) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding a NaN or an infinity."""
    bad = []
    for key, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                bad.append(key)
    return bad


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic saves (same arguments).

    Remote backends (``backend_args`` for object stores) keep mmengine's own order; the guarantees
    above hold for local folders.
    """

    def before_train(self, runner) -> None:
        """Set up as mmengine does, then remove temporaries of interrupted saves."""
        super().before_train(runner)
        if is_main_process() and self._local():
            for folder in {self.out_dir, runner.work_dir}:
                remove_stale_temporaries(folder, suffix=PARTIAL_SUFFIX)  # checkpoints
                remove_stale_temporaries(folder)  # last_checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to save non-finite weights; the last good checkpoint stays."""
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            last = osp.join(runner.work_dir, "last_checkpoint")
            good = Path(last).read_text().strip() if osp.isfile(last) else "none yet"
            more = f", ... ({len(bad)} in all)" if len(bad) > 5 else ""
            raise FloatingPointError(
                f"refusing to save a checkpoint with non-finite weights ({', '.join(bad[:5])}"
                f"{more}) at iteration {runner.iter}; the last good checkpoint is {good}")

    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self._local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        stale: list[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if not isinstance(self.keep_ckpt_ids, deque):  # pragma: no cover - mmengine sets it
                self.keep_ckpt_ids = deque(self.keep_ckpt_ids)
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                stale.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        tmp_name = partial_name(filename)
        runner.save_checkpoint(self.out_dir, tmp_name, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        replace_atomically(osp.join(self.out_dir, tmp_name), self.last_ckpt)
        atomic_write_text(osp.join(runner.work_dir, "last_checkpoint"), self.last_ckpt,
                          fsync=True)
        for old in stale:
            path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if path != self.last_ckpt and osp.isfile(path):
                os.remove(path)
