"""Checkpoint references of a config, checked before a run starts.

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

import os
import os.path as osp
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

#: Config keys whose string values name checkpoint files.
WEIGHT_KEYS = ("checkpoint", "teacher_ckpt", "amplifier_ckpt", "load_from", "pretrained")
TORCHVISION_PREFIXES = ("torchvision://", "modelzoo://")
OPENMMLAB_PREFIXES = ("open-mmlab://", "openmmlab://")
MMCLS_PREFIX = "mmcls://"
HTTP_PREFIXES = ("http://", "https://")
REMOTE_PREFIXES = (*TORCHVISION_PREFIXES, *OPENMMLAB_PREFIXES, MMCLS_PREFIX, *HTTP_PREFIXES)


class WeightFileError(FileNotFoundError):
    """A configured checkpoint cannot be found, fetched or safely loaded."""


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
    them), and not inside a :class:`~ds2d2_mm.amplifiers.HighFrequencyAmplifier` that starts from
    its teacher's checkpoint (which replaces every weight).
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
