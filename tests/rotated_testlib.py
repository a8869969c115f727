"""Tiny mmrotate models for the tests: rotated RetinaNet and Oriented R-CNN from mmrotate's own
configs, shrunk, and random batches with oriented boxes."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

MMROTATE_CONFIGS = Path(__import__("mmrotate").__file__).parent / ".mim" / "configs"
ROTATED_RETINA = (MMROTATE_CONFIGS / "rotated_retinanet"
                  / "rotated-retinanet-rbox-le90_r50_fpn_1x_dota.py")
ORIENTED_RCNN = MMROTATE_CONFIGS / "oriented_rcnn" / "oriented-rcnn-le90_r50_fpn_1x_dota.py"


def _model_cfg(path: Path) -> dict:
    from mmengine.config import Config

    return copy.deepcopy(Config.fromfile(str(path)).model.to_dict())


def _shrink_backbone(cfg: dict, width: int, fpn: int) -> None:
    cfg["backbone"].update(depth=18, base_channels=width, init_cfg=None, frozen_stages=-1,
                           norm_eval=False)
    cfg["neck"].update(in_channels=[width * 2**i for i in range(4)], out_channels=fpn)


def tiny_rotated_retinanet(width: int = 8, fpn: int = 16) -> dict:
    """mmrotate's rotated RetinaNet (le90) with a narrow ResNet-18, 3 classes."""
    cfg = _model_cfg(ROTATED_RETINA)
    _shrink_backbone(cfg, width, fpn)
    cfg["bbox_head"].update(in_channels=fpn, feat_channels=fpn, stacked_convs=1, num_classes=3)
    return cfg


def tiny_oriented_rcnn(width: int = 8, fpn: int = 16) -> dict:
    """mmrotate's Oriented R-CNN (le90) with a narrow ResNet-18, small RoI head, 3 classes."""
    cfg = _model_cfg(ORIENTED_RCNN)
    _shrink_backbone(cfg, width, fpn)
    cfg["rpn_head"].update(in_channels=fpn, feat_channels=fpn)
    cfg["roi_head"]["bbox_roi_extractor"].update(out_channels=fpn)
    cfg["roi_head"]["bbox_head"].update(in_channels=fpn, fc_out_channels=32, num_classes=3)
    cfg["train_cfg"]["rcnn"]["sampler"]["num"] = 64
    return cfg


def build_rot(cfg: dict, seed: int = 0):
    """Build ``cfg`` with mmrotate's registry (random init, train mode)."""
    from mmengine.config import ConfigDict
    from mmrotate.registry import MODELS

    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    return model.train()


def rotated_batch(model, boxes=(4, 3), size: int = 64, training: bool = True):
    """A preprocessed random batch with oriented ground-truth boxes for ``model``."""
    from mmrotate.testing import demo_mm_inputs

    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=len(boxes), image_shapes=[(3, size, size)] * len(boxes),
                            num_items=list(boxes), num_classes=3, use_box_type=True)
    data = model.data_preprocessor(packed, training)
    return data["inputs"], data["data_samples"]


def total(losses: dict) -> torch.Tensor:
    """Sum of every loss term (lists of per-level terms included)."""
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
