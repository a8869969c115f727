"""The train tool sets the scope from the config (mmdet or mmrotate) and checks the configured
weights before training: ImageNet weights from torch's hub cache, local files that exist.
(The dataset files are placeholders: the tool checks they exist, nothing here reads them.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ds2d2_testlib import DIOR_FILES, REPO, placeholder_data

sys.path.insert(0, str(REPO / "tools"))


def rotated_config() -> str:
    mmrotate = pytest.importorskip("mmrotate")
    return str(Path(mmrotate.__file__).parent / ".mim" / "configs" / "rotated_retinanet"
               / "rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py")


def imagenet_cache_file(name: str) -> Path:
    """Where torch's hub keeps torchvision://<name> (TORCH_HOME set by the test)."""
    import torch
    from mmengine.runner.checkpoint import get_torchvision_models

    url = get_torchvision_models()[name]
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def test_imagenet_weights_without_network_stop_before_training_with_url_and_cache(
        tmp_path, monkeypatch):
    import torch
    import train

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        from urllib.error import URLError

        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    config = str(REPO / "configs/ds2d2/retina_r18_dior.py")
    data = placeholder_data(tmp_path / "DIOR", **DIOR_FILES)
    args = train.parse_args([config, "--work-dir", str(tmp_path / "wd"), "--cfg-options", *data])
    with pytest.raises(FileNotFoundError) as err:
        train.build_runner(args)
    message = str(err.value)
    assert "model.backbone.init_cfg.checkpoint" in message
    assert "resnet18-" in message and str(imagenet_cache_file("resnet18")) in message
    assert not (tmp_path / "wd").exists()  # stopped before the runner made anything


def test_cached_imagenet_weights_are_what_the_backbone_starts_from(tmp_path, monkeypatch):
    import torch
    import torchvision
    import train

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: pytest.fail("the cached file must be used"))
    torch.manual_seed(3)
    state = torchvision.models.resnet18(weights=None).state_dict()
    cached = imagenet_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    config = str(REPO / "configs/ds2d2/retina_r18_dior.py")
    data = placeholder_data(tmp_path / "DIOR", **DIOR_FILES)
    args = train.parse_args([config, "--work-dir", str(tmp_path / "wd"), "--cfg-options", *data])
    runner = train.build_runner(args)
    runner.model.init_weights()
    assert torch.equal(runner.model.backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(runner.model.backbone.layer4[1].conv2.weight,
                       state["layer4.1.conv2.weight"])


def test_a_truncated_cached_download_is_refused_with_the_key(tmp_path, monkeypatch):
    import torch
    import train

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = imagenet_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, cached)
    cached.write_bytes(cached.read_bytes()[:100])
    config = str(REPO / "configs/ds2d2/retina_r18_dior.py")
    data = placeholder_data(tmp_path / "DIOR", **DIOR_FILES)
    args = train.parse_args([config, "--work-dir", str(tmp_path / "wd"), "--cfg-options", *data])
    with pytest.raises(FileNotFoundError, match=r"model\.backbone\.init_cfg\.checkpoint.*"
                                                 r"weights_only"):
        train.build_runner(args)


def test_amplifier_stage_does_not_ask_for_imagenet_weights(tmp_path, monkeypatch):
    """Every weight of the amplifier stage comes from the teacher checkpoint."""
    from mmengine.config import Config

    from ds2d2_mm.utils.checkpoint import weight_references

    cfg = Config.fromfile(str(REPO / "configs/ds2d2/retina_r101_hfamp_dior.py")).to_dict()
    keys = dict(weight_references(cfg))
    assert keys == {"model.teacher_ckpt": "work_dirs/retina_r101_dior/epoch_24.pth"}
    test_keys = dict(weight_references(
        Config.fromfile(str(REPO / "configs/ds2d2/retina_r18_dior.py")).to_dict(),
        training=False))
    assert test_keys == {}


def test_mmrotate_config_builds_its_runner_in_mmrotate_scope(tmp_path):
    import train
    from mmengine.registry import DefaultScope

    data = placeholder_data(tmp_path / "dota", folders=("trainval/annfiles", "trainval/images"))
    args = train.parse_args([rotated_config(), "--work-dir", str(tmp_path), "--cfg-options",
                             *data, "model.backbone.init_cfg=None", "model.backbone.depth=18",
                             "model.neck.in_channels=[64,128,256,512]"])
    runner = train.build_runner(args)
    assert runner.cfg.default_scope == "mmrotate"
    assert DefaultScope.get_current_instance().scope_name == "mmrotate"
    assert type(runner.model.bbox_head.bbox_coder).__name__ == "DeltaXYWHTRBBoxCoder"


def test_missing_local_pretrained_path_names_key_and_file(tmp_path):
    import train

    config = str(REPO / "configs/ds2d2/retina_r18_dior.py")
    data = placeholder_data(tmp_path / "DIOR", **DIOR_FILES)
    args = train.parse_args([config, "--work-dir", str(tmp_path), "--cfg-options", *data,
                             "model.backbone.init_cfg=None", f"load_from={tmp_path}/weights.pth"])
    with pytest.raises(FileNotFoundError, match="load_from.*weights.pth"):
        train.build_runner(args)
