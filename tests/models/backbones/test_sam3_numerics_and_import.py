"""Importing / building the SAM3 backbone leaves TF32 alone and needs sam3 only at build time.

``import sam3`` switches TF32 on when CUDA reports an Ampere or newer device. On a CPU machine
the tests fake such a device in a subprocess (``torch.cuda.is_available``,
``get_device_properties`` and ``get_device_capability`` patched before anything imports sam3).
The ``raw`` control shows the fake is effective: a plain ``import sam3`` flips the flags there,
so the guarded checks would fail if the restore were removed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from sam3_testlib import REPO, requires_sam3

FAKE_AMPERE = r"""
import json, sys, types
import torch

torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 1
torch.cuda.get_device_capability = lambda *a, **k: (8, 0)
torch.cuda.current_device = lambda: 0
torch.cuda.is_bf16_supported = lambda *a, **k: True
torch.cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(
    major=8, minor=0, name="fake A100", total_memory=80 << 30, multi_processor_count=108)

mode, user = sys.argv[1], sys.argv[2]
if user == "strict":  # the user switched TF32 off everywhere (legacy API)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
elif user == "medium":
    torch.set_float32_matmul_precision("medium")


def flags():
    return [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision()]


before = flags()
if mode == "raw":
    import sam3  # noqa: F401
elif mode == "build":
    from ds2d2_mm.models.backbones import SAM3ViTBackbone
    SAM3ViTBackbone(arch="tiny", adapter_cfg=dict(hidden_channels=8))
elif mode == "import":
    import ds2d2_mm.models.backbones  # noqa: F401
    assert "sam3" not in sys.modules, "importing ds2d2_mm.models.backbones imported sam3"
print(json.dumps(dict(before=before, after=flags())))
"""


def run_fake_ampere(mode: str, user: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", FAKE_AMPERE, mode, user],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@requires_sam3
def test_fake_ampere_device_makes_a_plain_sam3_import_switch_tf32_on():
    flags = run_fake_ampere("raw", "strict")
    assert flags["before"][:2] == [False, False]
    assert flags["after"][:2] == [True, True]


@requires_sam3
@pytest.mark.parametrize("user", ["default", "strict", "medium"])
def test_building_the_backbone_keeps_the_tf32_flags(user):
    flags = run_fake_ampere("build", user)
    assert flags["after"] == flags["before"]


def test_importing_the_package_does_not_import_sam3():
    flags = run_fake_ampere("import", "strict")
    assert flags["after"] == flags["before"]


@requires_sam3
def test_in_process_build_keeps_flags():
    from ds2d2_mm.models.backbones import preserved_tf32, tf32_state

    before = tf32_state()
    with preserved_tf32():
        torch.backends.cuda.matmul.allow_tf32 = not before["matmul_allow_tf32"]
        torch.backends.cudnn.allow_tf32 = not before["cudnn_allow_tf32"]
    assert tf32_state() == before


def test_missing_sam3_gives_an_install_hint():
    code = (
        "import sys\n"
        "sys.modules['sam3'] = None  # as if sam3 were not installed\n"
        "import ds2d2_mm.models.backbones as b\n"
        "try:\n"
        "    b.SAM3ViTBackbone(arch='tiny')\n"
        "except b.Sam3NotInstalledError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ERROR" in out.stdout and ".[sam3]" in out.stdout
