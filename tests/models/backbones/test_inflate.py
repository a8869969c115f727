"""Stem inflation (inflate_stem) and the PretrainedInflated weight initializer."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from ds2d2_testlib import tiny_retinanet


def rgb_weight(seed: int = 0, out: int = 8, k: int = 7) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(out, 3, k, k, dtype=torch.float64)


def stem(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, stride=2, padding=3)


@pytest.mark.parametrize("rescale", [True, False])
def test_rgb_bands_012_with_three_bands_is_the_identity(rescale):
    from ds2d2_mm.models.backbones import inflate_stem

    w = rgb_weight().float()
    assert torch.equal(inflate_stem(w, (0, 1, 2), 3, rescale=rescale), w)
    assert torch.equal(inflate_stem(w, None, 3), w)


def test_unscaled_rule_keeps_the_rgb_output_when_the_extra_bands_are_zero():
    """rescale=False: bands 3-4 at 0 (their dataset mean after normalisation) -> the RGB stem's
    output exactly (float64)."""
    from ds2d2_mm.models.backbones import inflate_stem

    w = rgb_weight()
    w5 = inflate_stem(w, (0, 1, 2, None, None), 5, rescale=False)
    assert w5.shape == (8, 5, 7, 7)
    torch.testing.assert_close(w5[:, :3], w, rtol=0, atol=0)
    torch.testing.assert_close(w5[:, 3], w.mean(1), rtol=0, atol=0)
    rgb = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    x = torch.cat([rgb, torch.zeros(2, 2, 32, 32, dtype=torch.float64)], 1)
    torch.testing.assert_close(stem(x, w5), stem(rgb, w), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rgb_bands", [(0, 1, 2, None, None), (2, 1, 0, None, None),
                                       (None, 0, None, 1, 2), (None, None, None, None)])
def test_rescaled_rule_keeps_the_rgb_output_for_bands_of_equal_content(rgb_bands):
    """rescale=True (default): every band equal to one image x -> the RGB stem on (x, x, x);
    bands 3-4 at 0 -> 3 / C times the RGB output on the mapped bands."""
    from ds2d2_mm.models.backbones import inflate_stem

    w = rgb_weight(1)
    c = len(rgb_bands)
    wc = inflate_stem(w, rgb_bands)
    assert wc.shape == (8, c, 7, 7)
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(stem(x.expand(-1, c, -1, -1), wc),
                               stem(x.expand(-1, 3, -1, -1), w), rtol=1e-12, atol=1e-12)
    if rgb_bands[:3] == (0, 1, 2):
        rgb = torch.randn(2, 3, 32, 32, dtype=torch.float64)
        x5 = torch.cat([rgb, torch.zeros(2, c - 3, 32, 32, dtype=torch.float64)], 1)
        torch.testing.assert_close(stem(x5, wc), stem(rgb, w) * 3 / c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bands", [1, 2, 4, 5, 13])
def test_without_rgb_bands_it_is_timms_adapt_input_conv(bands):
    timm_manipulate = pytest.importorskip("timm.models._manipulate")
    from ds2d2_mm.models.backbones import inflate_stem

    w = rgb_weight(2).float()
    ours = inflate_stem(w, None, bands)
    theirs = timm_manipulate.adapt_input_conv(bands, w.clone())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_bad_rgb_bands_are_config_errors():
    from ds2d2_mm.models.backbones import inflate_stem
    from ds2d2_mm.utils.errors import ConfigError

    w = rgb_weight().float()
    with pytest.raises(ConfigError, match="rgb_bands has 3 entries but the model has 5"):
        inflate_stem(w, (0, 1, 2), 5)
    with pytest.raises(ConfigError, match=r"0, 1, 2 \(R, G, B\) or None, got \[3\]"):
        inflate_stem(w, (0, 1, 3))
    with pytest.raises(ConfigError, match=r"RGB conv weight"):
        inflate_stem(torch.zeros(8, 4, 7, 7), None, 5)


def resnet(in_channels: int, init_cfg: dict | None = None) -> torch.nn.Module:
    from mmdet.registry import MODELS

    torch.manual_seed(in_channels)
    model = MODELS.build(dict(type="ResNet", depth=18, base_channels=8, in_channels=in_channels,
                              norm_eval=False, init_cfg=init_cfg))
    model.init_weights()
    return model


@pytest.mark.parametrize("prefix", [None, "backbone."])
def test_initializer_loads_a_3_band_checkpoint_into_a_5_band_resnet18(tmp_path, prefix):
    from ds2d2_mm.models.backbones import inflate_stem

    rgb = resnet(3)
    saved = rgb.state_dict()
    key = prefix or ""
    torch.save({"state_dict": {key + k: v for k, v in saved.items()}, "meta": {}},
               tmp_path / "rgb.pth")
    bands = (2, 1, 0, None, None)
    model = resnet(5, dict(type="PretrainedInflated", checkpoint=str(tmp_path / "rgb.pth"),
                           prefix=prefix, rgb_bands=bands))
    got = model.state_dict()
    assert got["conv1.weight"].shape == (8, 5, 7, 7)
    torch.testing.assert_close(got["conv1.weight"], inflate_stem(saved["conv1.weight"], bands),
                               rtol=0, atol=0)
    for name, value in saved.items():
        if name != "conv1.weight":
            torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=name)
    # the same checkpoint into a 3-band model: loaded as it is
    same = resnet(3, dict(type="PretrainedInflated", checkpoint=str(tmp_path / "rgb.pth"),
                          prefix=prefix))
    torch.testing.assert_close(same.state_dict()["conv1.weight"], saved["conv1.weight"])


def test_initializer_in_a_detector_config_and_its_errors(tmp_path):
    from mmdet.registry import MODELS

    from ds2d2_mm.utils.errors import ConfigError

    rgb = resnet(3)
    torch.save(rgb.state_dict(), tmp_path / "plain.pth")
    cfg = tiny_retinanet()
    cfg["data_preprocessor"] = dict(type="MultiBandDetDataPreprocessor", mean=[0.0] * 4,
                                    std=[1.0] * 4)
    cfg["backbone"].update(in_channels=4, init_cfg=dict(
        type="PretrainedInflated", checkpoint=str(tmp_path / "plain.pth")))
    det = MODELS.build(copy.deepcopy(cfg))
    det.init_weights()
    torch.testing.assert_close(det.backbone.conv1.weight.detach(),
                               torch.cat([rgb.conv1.weight, rgb.conv1.weight[:, :1]], 1) * 0.75)
    cfg["backbone"]["init_cfg"]["stem_key"] = "stem.0.weight"
    with pytest.raises(ConfigError, match=r"no 'stem\.0\.weight' \(stem_key\)"):
        MODELS.build(copy.deepcopy(cfg)).init_weights()
    cfg["backbone"]["init_cfg"].update(stem_key="conv1.weight", rgb_bands=[0, 1, 2])
    with pytest.raises(ConfigError, match="rgb_bands has 3 entries but the model has 4"):
        MODELS.build(copy.deepcopy(cfg)).init_weights()
