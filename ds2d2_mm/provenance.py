"""Which teacher and amplifier files a checkpoint was trained with.

A distiller keeps the SHA-256 of its teacher and amplifier checkpoints in a persistent buffer
(``provenance_sha256``, uint8 (2, 32): teacher, amplifier; zeros = no file), and the amplifier
stage keeps its teacher's (``teacher_sha256``, uint8 (32,)). Being tensors of a fixed shape, they
travel in every checkpoint, survive DDP's and mmengine's broadcasts of the state dict, and are
compared when a checkpoint is loaded (see :class:`~ds2d2_mm.distiller.SpectralDistiller`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checkpoint import file_sha256

#: Bytes of a SHA-256 digest.
SHA256_BYTES = 32


def digest_tensor(path: str | None) -> Tensor:
    """The SHA-256 of the file at ``path`` as a uint8 (32,) tensor; zeros for ``None``."""
    if path is None:
        return torch.zeros(SHA256_BYTES, dtype=torch.uint8)
    return torch.tensor(list(bytes.fromhex(file_sha256(path))), dtype=torch.uint8)


def digest_hex(digest: Tensor) -> str:
    """The hexadecimal SHA-256 held by ``digest`` (uint8 (32,)); ``''`` when it is all zeros."""
    values = digest.detach().cpu().to(torch.uint8).tolist()
    return bytes(values).hex() if any(values) else ""
