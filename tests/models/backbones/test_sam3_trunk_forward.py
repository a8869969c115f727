"""run_trunk equals SAM3's own ViT forward, pads smaller inputs, refuses what it cannot run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sam3_testlib import random_images, requires_sam3, sam3_installed

from ds2d2_mm.models.backbones import build_sam3_trunk, run_trunk


@pytest.fixture
def trunk():
    if not sam3_installed():
        pytest.skip("the optional sam3 package is missing")
    torch.manual_seed(0)
    return build_sam3_trunk("tiny").eval()


def test_matches_the_vit_forward(trunk):
    images = random_images()
    out = run_trunk(trunk, images)
    assert out.shape == (2, 32, 8, 8)
    torch.testing.assert_close(out, trunk(images)[-1], rtol=0, atol=0)


def test_smaller_inputs_are_padded_and_cropped(trunk):
    images = random_images()
    x = images[..., :100, :90]
    out = run_trunk(trunk, x)
    assert out.shape == (2, 32, 8, 7)  # ceil(100 / 14), ceil(90 / 14)
    reference = trunk(F.pad(x, (0, 22, 0, 12)))[-1][..., :8, :7]
    torch.testing.assert_close(out, reference, rtol=0, atol=0)


def test_larger_inputs_are_refused(trunk):
    with pytest.raises(ValueError, match="img_size=112"):
        run_trunk(trunk, torch.zeros(1, 3, 126, 112))


def test_dtype_cast_trunk_is_refused(trunk):
    images = random_images()
    with pytest.warns(UserWarning, match="imaginary"):
        trunk.to(torch.bfloat16)  # the complex RoPE tables lose their imaginary part
    with pytest.raises(RuntimeError, match="autocast"):
        run_trunk(trunk, images.to(torch.bfloat16))


@requires_sam3
def test_other_img_sizes_build_their_own_rope_tables():
    trunk = build_sam3_trunk("tiny", img_size=168).eval()
    assert trunk.blocks[3].attn.freqs_cis.shape[0] == (168 // 14) ** 2
    assert run_trunk(trunk, torch.zeros(1, 3, 168, 168)).shape == (1, 32, 12, 12)


@pytest.mark.parametrize(
    "overrides", [dict(img_size=100), dict(num_heads=16), dict(global_att_blocks=(1, 2))]
)
def test_invalid_settings_are_named(overrides):
    from ds2d2_mm.models.backbones.sam3_trunk import trunk_config

    with pytest.raises(ValueError, match=next(iter(overrides))):
        trunk_config("tiny", **overrides)


def test_unknown_arch():
    from ds2d2_mm.models.backbones.sam3_trunk import trunk_config

    with pytest.raises(ValueError, match="huge"):
        trunk_config("huge")
