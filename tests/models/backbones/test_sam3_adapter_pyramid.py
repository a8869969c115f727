"""Spectral adapter (identity at init, ~0.5M parameters) and the simple feature pyramid."""

from __future__ import annotations

import pytest
import torch
from sam3_testlib import make_backbone, random_images, requires_sam3

from ds2d2_mm.models.layers import SpectralAdapter
from ds2d2_mm.models.necks import SimpleFeaturePyramid


@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_adapter_is_the_identity_at_init(hw):
    torch.manual_seed(0)
    adapter = SpectralAdapter(32, hidden_channels=8)
    x = torch.randn(2, 32, *hw)
    assert torch.equal(adapter(x), x)


def test_adapter_learns_from_the_first_step():
    torch.manual_seed(0)
    adapter = SpectralAdapter(16, hidden_channels=4)
    x = torch.randn(2, 16, 6, 6)
    adapter(x).square().sum().backward()
    assert adapter.gamma.grad.abs().sum() > 0  # the residual scale moves first
    with torch.no_grad():
        adapter.gamma.fill_(1.0)
    y = adapter(x)
    assert y.shape == x.shape and not torch.allclose(y, x)


def test_adapter_size_for_sam3():
    adapter = SpectralAdapter(1024, hidden_channels=128)
    assert sum(p.numel() for p in adapter.parameters()) == 534_656


def test_pyramid_shapes_channels_and_strides():
    pyramid = SimpleFeaturePyramid(32, (4.0, 2.0, 1.0, 0.5))
    outs = pyramid(torch.randn(1, 32, 8, 8))
    assert [tuple(o.shape[1:]) for o in outs] == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (32, 4, 4)]
    assert pyramid.out_channels == (8, 16, 32, 32)
    assert pyramid.strides(14) == (3.5, 7.0, 14.0, 28.0)


def test_pyramid_projection():
    pyramid = SimpleFeaturePyramid(32, (2.0, 1.0, 0.5), out_channels=24)
    assert {o.shape[1] for o in pyramid(torch.randn(1, 32, 8, 8))} == {24}


@pytest.mark.parametrize("scales", [(3.0, 1.0), (1.0, 2.0), ()])
def test_pyramid_rejects_bad_scales(scales):
    with pytest.raises(ValueError):
        SimpleFeaturePyramid(32, scales)


@requires_sam3
def test_backbone_outputs_and_strides():
    images = random_images()
    backbone = make_backbone(scale_factors=(2.0, 1.0, 0.5))
    outs = backbone(images)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 16), (2, 32, 8, 8), (2, 32, 4, 4)]
    assert backbone.out_channels == (16, 32, 32)
    assert backbone.strides == (7.0, 14.0, 28.0)


@requires_sam3
def test_backbone_adapter_is_identity_at_init():
    images = random_images()
    backbone = make_backbone().eval()
    feats = backbone.forward_trunk(images)
    torch.testing.assert_close(backbone.adapter(feats), feats, rtol=0, atol=0)
