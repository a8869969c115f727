"""The train tool sets the scope from the config (mmdet or mmrotate) and refuses network weights."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ds2d2_testlib import REPO

sys.path.insert(0, str(REPO / "tools"))


def rotated_config() -> str:
    mmrotate = pytest.importorskip("mmrotate")
    return str(Path(mmrotate.__file__).parent / ".mim" / "configs" / "rotated_retinanet"
               / "rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py")


def test_remote_pretrained_weights_are_refused_with_the_key(tmp_path):
    import train

    args = train.parse_args([rotated_config(), "--work-dir", str(tmp_path)])
    with pytest.raises(ValueError, match=r"model\.backbone\.init_cfg\.checkpoint.*torchvision://"):
        train.build_runner(args)


def test_mmrotate_config_builds_its_runner_in_mmrotate_scope(tmp_path):
    import train
    from mmengine.registry import DefaultScope

    args = train.parse_args([rotated_config(), "--work-dir", str(tmp_path), "--cfg-options",
                             "model.backbone.init_cfg=None", "model.backbone.depth=18",
                             "model.neck.in_channels=[64,128,256,512]"])
    runner = train.build_runner(args)
    assert runner.cfg.default_scope == "mmrotate"
    assert DefaultScope.get_current_instance().scope_name == "mmrotate"
    assert type(runner.model.bbox_head.bbox_coder).__name__ == "DeltaXYWHTRBBoxCoder"


def test_missing_local_pretrained_path_names_key_and_file(tmp_path):
    import train

    config = str(REPO / "configs/ds2d2/retina_r18_dior.py")
    args = train.parse_args([config, "--work-dir", str(tmp_path), "--cfg-options",
                             f"load_from={tmp_path}/weights.pth"])
    with pytest.raises(FileNotFoundError, match="load_from.*weights.pth"):
        train.build_runner(args)
