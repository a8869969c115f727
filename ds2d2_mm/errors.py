"""Errors a user can cause, and the set of them the command-line tools report in one paragraph.

Every error here names the file, config key or value at fault and says what to do; the tools
print such an error without a traceback (``--debug`` shows it).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot work (a wrong key, value or combination), found before the
    first iteration."""


class StageError(RuntimeError):
    """A stage of a multi-stage job failed; its own command printed why."""


def known_errors() -> tuple[type[BaseException], ...]:
    """The error types that the tools report as a message and exit code 1."""
    from .checkpoint import CheckpointError
    from .datasets.io import DatasetError
    from .weight_files import WeightFileError

    return (ConfigError, CheckpointError, WeightFileError, DatasetError, FloatingPointError,
            StageError)
