"""What the converters share to run their per-file work in a process pool."""

from __future__ import annotations

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
