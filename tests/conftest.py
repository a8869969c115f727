"""Session set-up shared by every test: mmdet's modules and the plugin registered."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The tests mirror the package tree; the helper modules of one folder (and the formulas of
# tests/models/losses/test_published_formulas.py) are importable from every other folder.
_TESTS = Path(__file__).resolve().parent
sys.path.extend(str(d) for d in sorted(_TESTS.rglob("*"))
                if d.is_dir() and d.name not in ("data", "__pycache__")
                and str(d) not in sys.path)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one core per test worker (make test runs one worker per core), for the subprocesses the
    # tests start too
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _registered() -> None:
    """mmdet's modules and the plugin registered once per session, in mmdet's scope."""
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import ds2d2_mm  # noqa: F401


@pytest.fixture(scope="module")
def rotate_scope():
    """mmrotate's modules registered and its scope the default one, for a test module."""
    pytest.importorskip("mmrotate")
    from mmengine.registry import DefaultScope
    from mmrotate.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmrotate"):
        yield
