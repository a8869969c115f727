"""Named phases of a training step, timed only while a recorder is active.

The distillation step marks its parts with ``with phase("teacher forward"): ...``. With no
:class:`PhaseRecorder` active (always, outside the benchmark) :func:`phase` returns one shared
``nullcontext``: a global read and nothing else. Inside ``with PhaseRecorder(device) as rec:``
every phase is timed (wall clock; CUDA synchronised at its ends so that the time is the
device's) and labelled for ``torch.profiler`` too (``record_function``); phases nest, and a
phase is recorded under its path, e.g. ``"amplifier full / box decoding"``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch

__all__ = ["PhaseRecorder", "phase"]

_NULL = contextlib.nullcontext()
_ACTIVE: PhaseRecorder | None = None
#: Separator of nested phase names in :attr:`PhaseRecorder.totals`.
SEP = " / "


class PhaseRecorder:
    """Collects the wall time of every :func:`phase` run while it is active.

    Attributes:
        totals: Phase path -> seconds, summed over the calls.
        calls: Phase path -> number of calls.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[str] = []
        self._previous: PhaseRecorder | None = None

    def __enter__(self) -> PhaseRecorder:
        global _ACTIVE
        self._previous, _ACTIVE = _ACTIVE, self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        _ACTIVE = self._previous

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Time the enclosed block as ``name`` below the phases already open."""
        self._stack.append(name)
        path = SEP.join(self._stack)
        self._sync()
        start = time.perf_counter()
        try:
            with torch.profiler.record_function(path):
                yield
        finally:
            self._sync()
            self.totals[path] = self.totals.get(path, 0.0) + time.perf_counter() - start
            self.calls[path] = self.calls.get(path, 0) + 1
            self._stack.pop()


def phase(name: str) -> contextlib.AbstractContextManager:
    """A context that times its block as ``name`` while a :class:`PhaseRecorder` is active, and
    does nothing otherwise."""
    if _ACTIVE is None:
        return _NULL
    return _ACTIVE.span(name)
