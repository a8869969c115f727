"""Record what a method of one object was called with and returned, for one block of code.

The distiller runs the student's own ``loss`` (so every detector family keeps its exact task loss)
and picks up what that call computed on the way, the FPN features, the anchor targets, the sampled
RoIs, instead of computing them a second time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CallRecord:
    """Arguments and results of the calls seen while recording (the last call is ``[-1]``)."""

    name: str
    args: list[tuple] = field(default_factory=list)
    kwargs: list[dict] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)

    @property
    def called(self) -> bool:
        """Whether the method was called at least once."""
        return bool(self.outputs)

    @property
    def output(self) -> Any:
        """What the last call returned; raises when the method was never called."""
        if not self.outputs:
            raise RuntimeError(f"{self.name} was not called while recording")
        return self.outputs[-1]


@contextlib.contextmanager
def record_call(obj: Any, method: str) -> Iterator[CallRecord]:
    """Wrap ``obj.<method>`` for the ``with`` block and record each call.

    The wrapper is set on the instance and removed afterwards, so other instances of the class
    and later calls are untouched, also when the block raises.
    """
    original = getattr(obj, method)
    record = CallRecord(name=f"{type(obj).__name__}.{method}")
    had_instance_attr = method in vars(obj)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        record.args.append(args)
        record.kwargs.append(kwargs)
        record.outputs.append(out)
        return out

    object.__setattr__(obj, method, wrapper)
    try:
        yield record
    finally:
        if had_instance_attr:
            object.__setattr__(obj, method, original)
        else:
            object.__delattr__(obj, method)
