"""Atomic file writes: the one writer every file of this project goes through.

A file is written to a hidden temporary file in its destination folder and then renamed over
the destination (``os.replace``, atomic on POSIX file systems), so an interrupted run never
leaves a half-written file under the final name, and a reader sees the old file or the new one.
The new file gets the permissions an ordinary ``open(path, 'w')`` would give it (``0o666`` less
the process's umask: ``0644`` under the usual umask ``022``), not the ``0600`` of a temporary
file, so a dataset folder written by one user stays readable for the rest of a team.

- :func:`atomic_open`: a context manager giving the temporary file object (any writer:
  ``json.dump``, ``torch.save``, ``figure.savefig``); with ``fsync=True`` the data and the
  folder entry are flushed to disk before the rename (checkpoints);
- :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_write_json`,
  :func:`atomic_write_image`, :func:`atomic_torch_save`: the usual payloads on top of it;
- :func:`replace_atomically`: the rename step alone, for a file that another library wrote under
  a temporary name of ours (mmengine's ``runner.save_checkpoint``);
- :func:`remove_stale_temporaries`: clears what an interrupted run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "TMP_PREFIX",
    "TMP_SUFFIX",
    "atomic_open",
    "atomic_torch_save",
    "atomic_write_bytes",
    "atomic_write_image",
    "atomic_write_json",
    "atomic_write_text",
    "default_file_mode",
    "remove_stale_temporaries",
    "replace_atomically",
    "temporary_name",
]

#: Prefix and suffix of the temporary files of :func:`atomic_open`.
TMP_PREFIX, TMP_SUFFIX = ".", ".tmp"
#: Permissions of a new file before the umask applies (as ``open`` creates files).
_CREATE_MODE = 0o666


def default_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open(path, 'w')`` gives a new file."""
    try:  # Linux: read it without changing it (os.umask would, for a moment, for all threads)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return _CREATE_MODE & ~int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    mask = os.umask(0)  # pragma: no cover - not Linux
    os.umask(mask)  # pragma: no cover
    return _CREATE_MODE & ~mask  # pragma: no cover


def temporary_name(filename: str, suffix: str = TMP_SUFFIX) -> str:
    """The hidden temporary name of ``filename`` (``.name<suffix>``), for a writer that takes a
    fixed file name (see :func:`replace_atomically`)."""
    return f"{TMP_PREFIX}{filename}{suffix}"


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:  # pragma: no cover - folders that cannot be opened (not on Linux)
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(tmp: str | os.PathLike, dst: str | os.PathLike, fsync: bool = True,
                       mode: int | None = None) -> None:
    """Rename the finished file ``tmp`` over ``dst``, with ``mode`` (default: what the umask
    gives a new file); with ``fsync`` its data and the folder entry are flushed to disk."""
    if fsync:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.chmod(tmp, default_file_mode() if mode is None else mode)
    os.replace(tmp, dst)
    if fsync:
        _fsync_folder(os.path.dirname(os.fspath(dst)))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", fsync: bool = False,
                encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on leaving the block without an
    error it replaces ``path`` (:func:`replace_atomically`), otherwise it is removed.

    Args:
        path: The destination; its parent folder is created when missing.
        mode: ``'wb'`` or ``'w'``.
        fsync: Flush data and folder entry to disk before the rename (slower; for checkpoints).
        encoding: Text encoding for ``mode='w'`` (default UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    try:
        kwargs = {"encoding": encoding or "utf-8"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        replace_atomically(tmp, path, fsync=fsync)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, fsync: bool = False) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (keys kept in insertion order)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False))


def atomic_write_image(path: str | os.PathLike, image: Any) -> None:
    """Encode a BGR / gray image array by the extension of ``path`` and write it atomically.

    Raises:
        ValueError: When OpenCV cannot encode the image with that extension.
    """
    import cv2

    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {image.shape} image as {path.suffix}")
    atomic_write_bytes(path, buf.tobytes())


def atomic_torch_save(obj: Any, path: str | os.PathLike, force: bool = True) -> None:
    """``torch.save(obj, path)`` atomically, flushed to disk.

    Args:
        force: Replace an existing file; ``False`` refuses to (``FileExistsError``).
    """
    import torch

    if not force and os.path.exists(path):
        raise FileExistsError(f"{path} exists; pass force=True (--force) to overwrite it")
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(obj, f)


def remove_stale_temporaries(*folders: str | os.PathLike, suffix: str = TMP_SUFFIX) -> int:
    """Delete the temporary files an interrupted write left in ``folders`` (not recursive);
    returns how many."""
    count = 0
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for tmp in folder.glob(f"{TMP_PREFIX}*{suffix}"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count
