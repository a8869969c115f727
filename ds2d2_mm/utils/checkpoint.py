"""Checkpoints: safe loading, provenance digests, and the weight files a config names.

Three parts, one concern (what a checkpoint file is and whether it may be used):

**Safe loading.** Checkpoint loading for torch >= 2.6, whose ``torch.load`` defaults to
``weights_only=True``.

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

**Provenance.** Which teacher and amplifier files a checkpoint was trained with.

A distiller keeps the SHA-256 of its teacher and amplifier checkpoints in a persistent buffer
(``provenance_sha256``, uint8 (2, 32): teacher, amplifier; zeros = no file), and the amplifier
stage keeps its teacher's (``teacher_sha256``, uint8 (32,)). Being tensors of a fixed shape, they
travel in every checkpoint, survive DDP's and mmengine's broadcasts of the state dict, and are
compared when a checkpoint is loaded (see
:class:`~ds2d2_mm.models.distillers.spectral_distiller.SpectralDistiller`).

**Weight files of a config.** Checkpoint references of a config, checked before a run starts.

A config names weights as local files or as what mmengine's loaders accept remotely
(``torchvision://resnet18``, ``open-mmlab://...``, ``mmcls://...``, ``http(s)://...``). Remote
ones resolve, through mmengine's own model tables, to a URL whose file torch's hub keeps in
``<torch.hub.get_dir()>/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``), where mmengine's loader
finds it at run time. :func:`check_weight_files` fetches a missing one into that cache before the
first iteration, or stops with the config key, the URL and the path where the file can be placed
by hand (machines without network). A fetched file must load with
``torch.load(weights_only=True)``: a truncated download, or one that holds pickled code, is
refused here (local files are read by loaders that already load safely).
"""

from __future__ import annotations

import collections
import hashlib
import os
import os.path as osp
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torch import Tensor, nn

from .errors import CheckpointError, WeightFileError

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


def upgraded_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the checkpoint keys of earlier releases renamed as ``model`` names them now
    (a model that renamed keys has ``upgrade_state_dict``; any other model gets ``state``)."""
    upgrade = getattr(model, "upgrade_state_dict", None)
    return upgrade(state) if callable(upgrade) else state


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
    state = upgraded_state(model, state)
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
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


# -- provenance ----------------------------------------------------------------------------------

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


# -- weight files of a config -------------------------------------------------------------------

#: Config keys whose string values name checkpoint files.
WEIGHT_KEYS = ("checkpoint", "teacher_ckpt", "amplifier_ckpt", "load_from", "pretrained")
TORCHVISION_PREFIXES = ("torchvision://", "modelzoo://")
OPENMMLAB_PREFIXES = ("open-mmlab://", "openmmlab://")
MMCLS_PREFIX = "mmcls://"
HTTP_PREFIXES = ("http://", "https://")
REMOTE_PREFIXES = (*TORCHVISION_PREFIXES, *OPENMMLAB_PREFIXES, MMCLS_PREFIX, *HTTP_PREFIXES)




def _name(path: str) -> str:
    return path.split("://", 1)[1]


def remote_url(path: str) -> str | None:
    """The URL behind a remote checkpoint reference, with mmengine's own model tables; ``None``
    for a local path.

    Raises:
        KeyError: for a model name that mmengine's tables do not know.
    """
    from mmengine.runner.checkpoint import (
        get_deprecated_model_names,
        get_external_models,
        get_mmcls_models,
        get_torchvision_models,
    )

    if path.startswith(HTTP_PREFIXES):
        return path
    if path.startswith(TORCHVISION_PREFIXES):
        table, name = get_torchvision_models(), _name(path)
    elif path.startswith(OPENMMLAB_PREFIXES):
        name = _name(path)
        name = get_deprecated_model_names().get(name, name)
        table = get_external_models()
    elif path.startswith(MMCLS_PREFIX):
        table, name = get_mmcls_models(), _name(path)
    else:
        return None
    if name not in table:
        raise KeyError(f"{path!r}: mmengine knows no model {name!r} under this prefix")
    url = table[name]
    return url if url.startswith(HTTP_PREFIXES) else None


def hub_cache_file(url: str) -> Path:
    """Where torch's hub (and so mmengine's loader) keeps the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / osp.basename(urlparse(url).path)


def fetch(url: str, key: str) -> Path:
    """The cached file of ``url``, downloaded into torch's hub cache when missing.

    Raises:
        WeightFileError: without network (or on a failed download), naming the config ``key``,
            the URL and the cache path where the file can be placed by hand.
    """
    cached = hub_cache_file(url)
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cached), progress=True)
    except Exception as err:  # URLError, HTTPError, timeouts, OSError: all mean "not fetched"
        raise WeightFileError(
            f"config key {key}: {url} is not in torch's hub cache and could not be downloaded "
            f"({type(err).__name__}: {err}). Download it where there is network and place it at "
            f"{cached} (torch's hub cache, $TORCH_HOME/hub/checkpoints), or set {key} to a local "
            "file") from err
    return cached


def check_loadable(path: str | Path, key: str) -> None:
    """Raise :class:`WeightFileError` unless ``path`` loads with ``weights_only=True``."""
    try:
        try:
            torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            torch.load(str(path), map_location="cpu", weights_only=True)  # legacy format
    except Exception as err:
        raise WeightFileError(
            f"config key {key}: {path} does not load with torch.load(weights_only=True) "
            f"({type(err).__name__}: {err}); it is truncated, not a checkpoint, or holds pickled "
            "objects that this project refuses to run") from err


def local_checkpoint(path: str | None, key: str) -> str | None:
    """The local file of a checkpoint reference: a local path as it is, a remote one
    (``open-mmlab://``, ``torchvision://``, a model-zoo URL) from torch's hub cache, fetched once.

    Raises:
        WeightFileError: for an unknown model name, or a remote file that is neither cached nor
            downloadable (naming ``key``, the URL and the cache path).
    """
    if path is None:
        return None
    try:
        url = remote_url(str(path))
    except KeyError as err:
        raise WeightFileError(f"config key {key}: {err.args[0]}") from None
    if url is None:
        return str(path)
    cached = fetch(url, key)
    check_loadable(cached, key)
    return str(cached)


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


def weight_references(cfg: dict, training: bool = True) -> Iterator[tuple[str, str]]:
    """``(dotted key, path)`` of every checkpoint that a run of ``cfg`` reads.

    ``init_cfg`` checkpoints count only for training (testing loads a trained checkpoint over
    them), and not inside a :class:`~ds2d2_mm.models.distillers.amplifiers.HighFrequencyAmplifier`
    that starts from its teacher's checkpoint (which replaces every weight).
    """
    model = cfg.get("model") or {}
    amp_from_teacher = (model.get("type") == "HighFrequencyAmplifier"
                        and model.get("teacher_ckpt") is not None)
    for key, value in _walk(cfg):
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in WEIGHT_KEYS or not isinstance(value, str) or not value:
            continue
        in_init = ".init_cfg." in f".{key}"
        if in_init and (not training or (amp_from_teacher and key.startswith("model.detector."))):
            continue
        yield key, value


def check_weight_files(cfg: dict, skip: tuple[str, ...] = (), training: bool = True) -> None:
    """Fail before the first iteration when a checkpoint of ``cfg`` is missing or unsafe.

    Remote references are fetched into torch's hub cache (once) and test-loaded with
    ``weights_only=True``; local files must exist.

    Args:
        cfg: The full config as a dict.
        skip: Dotted keys not to check (e.g. ``load_from`` when resuming from the work dir).
        training: Whether the run trains (``init_cfg`` checkpoints are read).

    Raises:
        WeightFileError: naming the config key, the path or URL, and what to do.
    """
    for key, value in weight_references(cfg, training):
        if key in skip:
            continue
        try:
            url = remote_url(value)
        except KeyError as err:
            raise WeightFileError(f"config key {key}: {err.args[0]}") from None
        if url is not None:
            check_loadable(fetch(url, key), key)
        elif not value.startswith(REMOTE_PREFIXES) and not Path(value).is_file():
            # (an open-mmlab:// name of a file in mmengine's home is left to mmengine)
            raise WeightFileError(f"config key {key}: file {value!r} does not exist "
                                  f"(working directory {os.getcwd()})")
