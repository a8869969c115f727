"""Checkpoint loading for torch >= 2.6, whose ``torch.load`` defaults to ``weights_only=True``.

What is trusted, and why: ``weights_only=True`` stays on for every file. Instead of switching it
off, :func:`allow_mmengine_checkpoints` adds to torch's allow-list exactly the types that
mmengine's own runner writes into a checkpoint besides tensors (numpy arrays, dtypes and scalars
in the message hub, mmengine's ``HistoryBuffer`` with its statistics methods, ``ConfigDict``,
``Counter``). ``getattr``, which pickle uses for the ``HistoryBuffer`` statistics methods, is
allowed only for exactly those. A checkpoint that holds anything else still fails to load with
torch's own error, so a crafted pickle cannot run code. Checkpoints written by other tools that
pickle further objects must be converted (load them once with ``weights_only=False`` in a session
you trust, save ``{'state_dict': ...}``).

:func:`load_checkpoint_checked` loads a teacher (or any frozen) model and reports what does not
fit, naming the file and the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import collections
import os
import pickle
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

_ALLOWED = False


def _numpy_globals() -> list:
    """numpy objects that appear in pickled arrays, dtypes and scalars (numpy 1.x and 2.x)."""
    out: list = [np.ndarray, np.dtype]
    for mod_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = __import__(mod_name, fromlist=["_reconstruct", "scalar"])
        except ImportError:  # pragma: no cover - depends on the numpy major version
            continue
        out += [mod._reconstruct, mod.scalar]
        break
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


#: Statistics methods that ``HistoryBuffer`` registers by default (its class dict is filled only
#: when the first buffer is made, so they are named here).
_HISTORY_BUFFER_STATISTICS = frozenset({"min", "max", "current", "mean"})


def _history_buffer_getattr(obj: object, name: str) -> object:
    """``getattr`` limited to what mmengine's ``HistoryBuffer`` pickles: its statistics methods.

    ``HistoryBuffer`` keeps ``{'min': HistoryBuffer.min, ...}``, which pickle stores as
    ``getattr(HistoryBuffer, 'min')``. A general ``getattr`` would let a file call arbitrary
    methods of allow-listed types, so any other use is refused.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = _HISTORY_BUFFER_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"refused getattr({obj!r}, {name!r}) in a checkpoint")


def allow_mmengine_checkpoints() -> None:
    """Allow-list the non-tensor types of mmengine runner checkpoints for ``weights_only`` loads.

    Idempotent. Called when ``ds2d2_mm`` is imported, so ``--resume``, ``load_from`` and teacher
    checkpoints written by mmengine load with torch's safe unpickler.
    """
    global _ALLOWED
    if _ALLOWED or not hasattr(torch.serialization, "add_safe_globals"):
        return
    from mmengine.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer

    torch.serialization.add_safe_globals([
        *_numpy_globals(), HistoryBuffer, ConfigDict, collections.Counter, collections.OrderedDict,
        (_history_buffer_getattr, "__builtin__.getattr"),
        (_history_buffer_getattr, "builtins.getattr"),
    ])
    _ALLOWED = True


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit the model it is loaded into."""


def read_state_dict(path: str, what: str, hint: str = "") -> dict[str, torch.Tensor]:
    """Load ``path`` on the CPU and return its ``state_dict`` (or the dict itself).

    Args:
        path: Local checkpoint file.
        what: What the file is for (used in messages), e.g. ``"teacher checkpoint"``.
        hint: What to do when the file is missing (which stage writes it, the command).
    """
    if not path or not os.path.isfile(path):
        raise CheckpointError(f"{what} not found: {path!r}. {hint}".strip())
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError variants
        raise CheckpointError(
            f"{what} {path!r} could not be loaded with torch.load(weights_only=True): {exc}"
        ) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{what} {path!r} holds a {type(ckpt).__name__}, not a dict")
    state = ckpt.get("state_dict", ckpt)
    return {re.sub(r"^module\.", "", k): v for k, v in state.items() if torch.is_tensor(v)}


def check_state_fits(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], title: str,
                     advice: str, optional: Callable[[str], bool] = lambda key: False) -> None:
    """Raise :class:`CheckpointError` when ``state`` does not fit the model state ``own``.

    The message starts with ``title``, lists missing keys (those ``optional`` does not excuse),
    unexpected keys and shape mismatches (8 of each at most, with the count) and ends with
    ``advice``.
    """
    missing = [k for k in own if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = [title]
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches", shapes)):
        if keys:
            more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
            parts.append(f"{label}: {', '.join(keys[:8])}{more}")
    parts.append(advice)
    raise CheckpointError("\n  ".join(parts))


def load_checkpoint_checked(
    model: nn.Module,
    path: str,
    what: str,
    hint: str = "",
    prefix: str = "",
    allow_missing: Sequence[str] = (),
) -> None:
    """Load ``path`` into ``model`` strictly, with an error that names what does not fit.

    Args:
        model: The module to fill.
        path: Local checkpoint file (an mmengine checkpoint or a bare state dict).
        what: What the file is for, used in messages.
        hint: What to do when the file is missing.
        prefix: Only keys starting with this prefix are used, with the prefix removed (e.g.
            ``"student."`` to read a student out of a distiller checkpoint).
        allow_missing: Regular expressions of model keys that may be absent from the file.
    """
    state = read_state_dict(path, what, hint)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)}
    check_state_fits(
        own, state,
        f"{what} {path!r} does not fit the {type(model).__name__} built from the config",
        "Check that the config describes the architecture the checkpoint was trained with.",
        optional=lambda k: any(re.match(p, k) for p in allow_missing))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


#: Bytes read at a time when hashing a checkpoint.
_HASH_CHUNK = 1 << 22
_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    """SHA-256 of the file at ``path`` (cached per path, size and modification time)."""
    import hashlib

    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]
