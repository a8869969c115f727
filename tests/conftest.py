"""Session set-up shared by every test: mmdet's modules and the plugin registered."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session", autouse=True)
def _registered() -> None:
    """mmdet's modules and the plugin registered once per session, in mmdet's scope."""
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    import ds2d2_mm  # noqa: F401
