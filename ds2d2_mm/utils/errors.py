"""Errors a user can cause, and the set of them the command-line tools report in one paragraph.

Every error here names the file, config key or value at fault and says what to do; the tools
print such an error without a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import os


class ConfigError(ValueError):
    """A configuration that cannot work (a wrong key, value or combination), found before the
    first iteration."""


class StageError(RuntimeError):
    """A stage of a multi-stage job failed; its own command printed why."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit the model it is loaded into."""


class ParityError(RuntimeError):
    """An exported model whose predictions differ from the PyTorch model's beyond tolerance."""


class WeightFileError(FileNotFoundError):
    """A configured checkpoint cannot be found, fetched or safely loaded."""


class MissingInputError(FileNotFoundError):
    """A dataset file or an earlier stage's checkpoint that a run reads is not there, found
    before the runner starts; the text says where it comes from and the command that makes it
    (``ds2d2_mm.apis.preflight``). The tools print it alone: a traceback would add nothing."""


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


class DatasetLayoutError(DatasetError):
    """A dataset as a whole does not fit what a tool expects: a missing or misplaced folder or
    list file, or an output that would hold no image. Skipping bad files (``--skip-bad``) cannot
    help, so the tools do not suggest it."""


def known_errors() -> tuple[type[BaseException], ...]:
    """The error types that the tools report as a message and exit code 1."""
    return (ConfigError, CheckpointError, WeightFileError, MissingInputError, DatasetError,
            FloatingPointError, StageError, ParityError)
