"""Error types and atomic file writes shared by the dataset converters.

Every file a converter writes goes through :func:`atomic_write_bytes`: the bytes are written to a
hidden temporary file in the destination folder and then moved over the destination with
``os.replace``, so an interrupted run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "AnnotationError",
    "DatasetError",
    "ImageError",
    "atomic_write_bytes",
    "atomic_write_image",
    "atomic_write_json",
    "atomic_write_text",
    "die_with_parent",
    "remove_stale_temporaries",
]

#: Prefix and suffix of the temporary files of :func:`atomic_write_bytes`.
TMP_PREFIX, TMP_SUFFIX = ".", ".tmp"


class DatasetError(Exception):
    """A problem with a user's dataset files, naming the file and (when known) the line.

    Args:
        path: The offending file.
        message: What is wrong and, where useful, what to do about it.
        line: 1-based line number inside ``path``, or ``None`` when it does not apply.
    """

    def __init__(self, path: str | os.PathLike, message: str | None = None,
                 line: int | None = None) -> None:
        self.path = str(path)
        self.message = message
        self.line = line
        if message is None:  # re-raised from a data loader worker: the text is complete
            super().__init__(self.path)
            return
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple:
        # Keeps the exception picklable across multiprocessing workers.
        return (type(self), (self.path, self.message, self.line))


class AnnotationError(DatasetError):
    """A malformed or inconsistent annotation file (bad field count, unknown class, ...)."""


class ImageError(DatasetError):
    """An image file that is missing or cannot be decoded."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder + os.replace).

    The parent folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Writes ``obj`` as JSON to ``path`` atomically (keys kept in insertion order)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False))


def atomic_write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encodes a BGR/gray ``uint8`` image by the extension of ``path`` and writes it atomically.

    Raises:
        ValueError: When OpenCV cannot encode the image with that extension.
    """
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix, image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {image.shape} image as {path.suffix}")
    atomic_write_bytes(path, buf.tobytes())


def remove_stale_temporaries(*folders: str | os.PathLike) -> int:
    """Delete the temporary files that an interrupted run of :func:`atomic_write_bytes` left in
    ``folders`` (not recursive); returns how many."""
    count = 0
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for tmp in folder.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count


#: Linux prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Make the calling process (a pool worker) get SIGTERM when its parent dies, so that a
    killed converter leaves no workers writing behind it. Linux only; elsewhere a no-op."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - non-glibc Linux
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
