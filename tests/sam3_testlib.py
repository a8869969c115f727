"""Helpers of the SAM3 backbone tests: a tiny random-init trunk on the CPU, no weights."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

#: The tiny trunk of the issue: img 112, patch 14, embed 32, depth 4, heads 2, window 4,
#: global blocks (1, 3) (the ``tiny`` preset).
TINY = dict(arch="tiny")


def sam3_installed() -> bool:
    """Whether sam3's ViT module can be found."""
    try:
        return importlib.util.find_spec("sam3.model.vitdet") is not None
    except ModuleNotFoundError:
        return False


requires_sam3 = pytest.mark.skipif(
    not sam3_installed(), reason="the optional sam3 package is missing"
)


def make_backbone(**kwargs):
    """A tiny ``SAM3ViTBackbone`` (seeded); ``kwargs`` override the defaults."""
    from ds2d2_mm.models.backbones import SAM3ViTBackbone

    torch.manual_seed(0)
    cfg = {**TINY, "num_trainable_blocks": 2, "adapter_cfg": dict(hidden_channels=8), **kwargs}
    return SAM3ViTBackbone(**cfg)


def random_images(n: int = 2, size: int = 112) -> torch.Tensor:
    """(n, 3, size, size) random normalised images."""
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=generator)


def load_tool(name: str) -> ModuleType:
    """The command ``ds2d2-<name>`` (``tools/<name>.py`` wraps it): ``ds2d2_mm.cli.<name>``."""
    return importlib.import_module(f"ds2d2_mm.cli.{name}")
