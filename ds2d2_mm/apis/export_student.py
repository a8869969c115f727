"""Export the student of a SpectralDistiller checkpoint as a plain mmdet checkpoint."""

from __future__ import annotations

import os

import torch

from ..utils.checkpoint import allow_mmengine_checkpoints
from ..utils.errors import CheckpointError
from ..utils.io import atomic_torch_save

STUDENT_PREFIX = "student."


def export_student(ckpt_path: str, out_path: str) -> dict[str, int]:
    """Write ``out_path`` with the ``student.*`` weights of ``ckpt_path``, prefix removed.

    The file is ``{'state_dict': ..., 'meta': ...}``, which stock mmdet loads into the plain
    student config (``tools/test.py STUDENT_CONFIG OUT``). Written atomically.

    Returns:
        Counts of exported and dropped (adapter) tensors.
    """
    if not os.path.isfile(ckpt_path):
        raise CheckpointError(f"distiller checkpoint not found: {ckpt_path!r}")
    allow_mmengine_checkpoints()
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    student = {k[len(STUDENT_PREFIX):]: v for k, v in state.items()
               if k.startswith(STUDENT_PREFIX)}
    if not student:
        raise CheckpointError(f"{ckpt_path!r} has no '{STUDENT_PREFIX}*' keys: it is not a "
                              "SpectralDistiller checkpoint")
    meta = dict(ckpt.get("meta", {}))
    meta["exported_from"] = os.path.abspath(ckpt_path)
    atomic_torch_save({"state_dict": student, "meta": meta}, out_path)
    return {"exported": len(student), "dropped": len(state) - len(student)}
