"""Retention metrics and the retention tool."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sam3_testlib import REPO, load_tool, requires_sam3

from ds2d2_mm.apis.sam3.trunk_retention import (
    RetentionReport,
    linear_cka,
    per_image_cka,
    per_image_cosine,
)


def test_cka_is_one_for_rotated_and_scaled_copies_and_low_for_noise():
    torch.manual_seed(0)
    x = torch.randn(200, 16)
    q, _ = torch.linalg.qr(torch.randn(16, 16))
    assert linear_cka(x, 3.0 * x @ q).item() == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(200, 16)).item() < 0.3


def test_per_image_metrics():
    a = torch.randn(3, 8, 4, 4)
    assert per_image_cosine(a, a).tolist() == pytest.approx([1.0] * 3)
    assert per_image_cosine(a, -a).tolist() == pytest.approx([-1.0] * 3)
    assert per_image_cka(a, 2 * a).tolist() == pytest.approx([1.0] * 3)


def test_report_verdict_and_table():
    report = RetentionReport(names=["a.png", "b.png"], cosine=[0.99, 0.97], cka=[0.98, 0.96])
    assert report.passed and "PASS" in report.table() and "a.png" in report.table()
    report.cka[1] = 0.5
    assert not report.passed and "FAIL" in report.table()
    assert not RetentionReport().passed


@requires_sam3
@pytest.mark.parametrize(("noise", "code"), [(0.0, 0), (1.0, 1)])
def test_retention_tool(tmp_path, capsys, noise, code):
    import cv2

    from ds2d2_mm.models.backbones import SAM3_TRUNK_PREFIX, build_sam3_trunk

    torch.manual_seed(0)
    original = build_sam3_trunk("tiny")
    torch.save(
        {"model": {SAM3_TRUNK_PREFIX + k: v for k, v in original.state_dict().items()}},
        tmp_path / "sam3.pt",
    )
    finetuned = {
        k: v + noise * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in original.state_dict().items()
    }
    torch.save(
        {"state_dict": {f"backbone.trunk.{k}": v for k, v in finetuned.items()}},
        tmp_path / "epoch_1.pth",
    )
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(images / f"img{i}.png"), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    tool = load_tool("sam3_retention")
    argv = [
        str(REPO / "configs/sam3/retina_sam3_tiny.py"),
        str(tmp_path / "epoch_1.pth"),
        "--images",
        str(images),
        "--original",
        str(tmp_path / "sam3.pt"),
        "--device",
        "cpu",
    ]
    assert tool.main(argv) == code
    out = capsys.readouterr().out
    assert "img2.png" in out and ("PASS" if code == 0 else "FAIL") in out
