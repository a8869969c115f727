"""Tiny random-init detectors of the dense families (FCOS, ATSS, GFL, RTMDet, RTMDet-R) from the
families' own mmdet / mmrotate configs, shrunk for CPU tests."""

from __future__ import annotations

import copy
from pathlib import Path

MMDET_CONFIGS = Path(__import__("mmdet").__file__).parent / ".mim" / "configs"

#: The families' own configs the tiny models start from.
FAMILY_CONFIGS = {
    "fcos": "fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py",
    "atss": "atss/atss_r50_fpn_1x_coco.py",
    "gfl": "gfl/gfl_r50_fpn_1x_coco.py",
    "rtmdet": "rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
}
BN = dict(type="BN")


def _model_cfg(path: Path) -> dict:
    from mmengine.config import Config

    return copy.deepcopy(Config.fromfile(str(path)).model.to_dict())


def _resnet(cfg: dict, width: int, fpn: int) -> None:
    cfg["backbone"].update(depth=18, base_channels=width, init_cfg=None, frozen_stages=-1,
                           norm_eval=False, style="pytorch", norm_cfg=dict(type="BN"))
    cfg["neck"].update(in_channels=[width * 2**i for i in range(4)], out_channels=fpn)
    cfg["data_preprocessor"].update(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                    bgr_to_rgb=True)


def tiny_dense(family: str, width: int = 8, fpn: int = 16, num_classes: int = 3) -> dict:
    """FCOS, ATSS or GFL from mmdet's 1x config with a narrow ResNet-18 and one stacked conv
    (GroupNorm heads with 4 groups)."""
    cfg = _model_cfg(MMDET_CONFIGS / FAMILY_CONFIGS[family])
    _resnet(cfg, width, fpn)
    head = cfg["bbox_head"]
    head.update(num_classes=num_classes, in_channels=fpn, feat_channels=fpn, stacked_convs=1)
    if "norm_cfg" in head or family in ("fcos", "atss", "gfl"):
        head["norm_cfg"] = dict(type="GN", num_groups=4, requires_grad=True)
    return cfg


def tiny_rtmdet(widen: float = 0.125, fpn: int = 16, num_classes: int = 3) -> dict:
    """RTMDet (mmdet's tiny config) at ``widen`` of the CSPNeXt widths, BN for SyncBN."""
    cfg = _model_cfg(MMDET_CONFIGS / FAMILY_CONFIGS["rtmdet"])
    ch = [int(c * widen) for c in (256, 512, 1024)]
    cfg["backbone"].update(widen_factor=widen, init_cfg=None, norm_cfg=BN)
    cfg["neck"].update(in_channels=ch, out_channels=fpn, norm_cfg=BN)
    cfg["bbox_head"].update(num_classes=num_classes, in_channels=fpn, feat_channels=fpn,
                            norm_cfg=BN)
    return cfg


#: RTMDet-R's task box loss, RotatedIoULoss, runs mmcv's diff_iou_rotated, which has no CPU
#: kernel; the CPU tests give the student mmrotate's Gaussian Wasserstein box loss instead (finite
#: on the degenerate boxes of a random head, where the KL one is not).
CPU_ROTATED_BOX_LOSS = dict(type="GDLoss", loss_type="gwd", loss_weight=2.0)


def tiny_rotated_rtmdet(widen: float = 0.125, fpn: int = 16, num_classes: int = 3) -> dict:
    """mmrotate's RTMDet-R tiny (DOTA) at ``widen`` of the CSPNeXt widths, BN for SyncBN, the
    CPU box loss (:data:`CPU_ROTATED_BOX_LOSS`)."""
    from rotated_testlib import MMROTATE_CONFIGS

    cfg = _model_cfg(MMROTATE_CONFIGS / "rotated_rtmdet" / "rotated_rtmdet_tiny-3x-dota.py")
    ch = [int(c * widen) for c in (256, 512, 1024)]
    cfg["backbone"].update(widen_factor=widen, init_cfg=None, norm_cfg=BN)
    cfg["neck"].update(in_channels=ch, out_channels=fpn, norm_cfg=BN)
    cfg["bbox_head"].update(num_classes=num_classes, in_channels=fpn, feat_channels=fpn,
                            norm_cfg=BN, loss_bbox=dict(CPU_ROTATED_BOX_LOSS))
    return cfg
