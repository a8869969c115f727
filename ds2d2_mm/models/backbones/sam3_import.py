"""Import SAM3's ViT module lazily, without letting the import change global numerics.

``import sam3`` runs ``sam3/model_builder.py``, whose ``_setup_tf32()`` switches TF32 on for the
whole process (``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``)
when the first CUDA device is Ampere or newer. A detector that merely uses SAM3's trunk must not
change the numerics of everything else in the process, so :func:`import_vitdet` snapshots the
TF32 settings, imports, and puts back whatever the import changed.

torch >= 2.9 keeps TF32 state in two APIs (the legacy ``allow_tf32`` booleans and
``set_float32_matmul_precision``, and the newer ``fp32_precision`` strings) and raises when the
legacy getters are read after a mix of both. The snapshot therefore records every value that can
be read, and the restore replays them in the one order (legacy booleans, matmul precision, then
``fp32_precision`` strings) that reproduces each state reachable through a single API exactly.

Importing this module does not import sam3; only calling :func:`import_vitdet` or
:func:`import_sam3` does.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch

__all__ = [
    "Sam3NotInstalledError",
    "import_sam3",
    "import_vitdet",
    "preserved_tf32",
    "tf32_state",
]

_INSTALL_HINT = (
    "The SAM3 backbone needs the optional `sam3` package (and psutil, which sam3 imports without "
    "declaring it). Install the extra: `pip install -e .[sam3]` (or `pip install sam3==0.1.4 "
    "psutil timm torchmetrics`)."
)

_VITDET: ModuleType | None = None


class Sam3NotInstalledError(ImportError):
    """The ``sam3`` package (or one of its undeclared imports) is not installed."""


def _read(getter: Callable[[], Any]) -> Any:
    """``getter()``, or ``None`` where torch refuses to read it (mixed legacy / new TF32 API)."""
    try:
        return getter()
    except (RuntimeError, AttributeError):
        return None


def _precision_objects() -> list[tuple[str, Any]]:
    """The ``fp32_precision`` holders of this torch build, parents before children."""
    backends = torch.backends
    candidates = [
        ("generic", backends),
        ("cudnn", getattr(backends, "cudnn", None)),
        ("matmul", backends.cuda.matmul),
        ("cudnn.conv", getattr(getattr(backends, "cudnn", None), "conv", None)),
        ("cudnn.rnn", getattr(getattr(backends, "cudnn", None), "rnn", None)),
    ]
    return [(name, obj) for name, obj in candidates if obj is not None]


def tf32_state() -> dict[str, Any]:
    """Every readable TF32-related setting of the process (``None`` where unreadable).

    Keys: ``matmul_allow_tf32``, ``cudnn_allow_tf32``, ``float32_matmul_precision`` and
    ``fp32_precision.<holder>`` for each ``fp32_precision`` holder of this torch build.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the legacy API is deprecated
        state: dict[str, Any] = {
            "matmul_allow_tf32": _read(lambda: torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": _read(lambda: torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": _read(torch.get_float32_matmul_precision),
        }
        for name, obj in _precision_objects():
            state[f"fp32_precision.{name}"] = _read(lambda obj=obj: obj.fp32_precision)
    return state


def _restore(saved: dict[str, Any]) -> None:
    """Write ``saved`` (from :func:`tf32_state`) back, in the order that reproduces it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the legacy API is deprecated
        if saved["matmul_allow_tf32"] is not None:
            torch.backends.cuda.matmul.allow_tf32 = saved["matmul_allow_tf32"]
        if saved["cudnn_allow_tf32"] is not None:
            torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
        if saved["float32_matmul_precision"] is not None:
            torch.set_float32_matmul_precision(saved["float32_matmul_precision"])
        for name, obj in _precision_objects():
            value = saved.get(f"fp32_precision.{name}")
            if value is not None:
                obj.fp32_precision = value


@contextlib.contextmanager
def preserved_tf32() -> Iterator[None]:
    """Run the block, then undo any change it made to the process's TF32 settings.

    Warns when the settings cannot be put back exactly (only possible when they were already in
    a mixed legacy / new API state before the block, which torch itself refuses to read).
    """
    before = tf32_state()
    try:
        yield
    finally:
        if tf32_state() != before:
            _restore(before)
            after = tf32_state()
            if after != before:
                diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
                warnings.warn(
                    f"could not restore the TF32 settings exactly after importing sam3 "
                    f"(setting: (before, after)): {diff}",
                    RuntimeWarning,
                    stacklevel=3,
                )


def import_vitdet() -> ModuleType:
    """Import and return ``sam3.model.vitdet`` with the process's TF32 settings left as they were.

    Raises:
        Sam3NotInstalledError: sam3 or one of the modules it imports is missing, with the
            command that installs them.
    """
    global _VITDET
    if _VITDET is None:
        with preserved_tf32():
            try:
                from sam3.model import vitdet
            except ImportError as exc:
                raise Sam3NotInstalledError(f"{_INSTALL_HINT} (import failed: {exc})") from exc
        _VITDET = vitdet
    return _VITDET


def import_sam3(name: str) -> ModuleType:
    """Import and return the sam3 module ``name`` (e.g. ``"sam3.model.sam3_image"``).

    Like :func:`import_vitdet`, the process's TF32 settings are left as they were (the first
    import of any sam3 module that pulls in ``sam3.model_builder`` would switch them on).

    Raises:
        ValueError: ``name`` is not a sam3 module name.
        Sam3NotInstalledError: sam3 or one of the modules it imports (psutil, timm,
            torchmetrics, ...) is missing, with the command that installs them.
    """
    if name != "sam3" and not name.startswith("sam3."):
        raise ValueError(f"import_sam3 imports sam3 modules only, got {name!r}")
    with preserved_tf32():
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise Sam3NotInstalledError(
                f"{_INSTALL_HINT} (importing {name} failed: {exc})"
            ) from exc
