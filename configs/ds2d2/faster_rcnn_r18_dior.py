# The student baseline: Faster R-CNN ResNet-18 FPN on DIOR alone, the same schedule as the distilled
# student (the honest comparison).
#   python tools/train.py configs/ds2d2/faster_rcnn_r18_dior.py
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/dior_detection.py',
    '../_base_/ds2d2_24e_runtime.py',
]
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
pretrained = None  # local ImageNet ResNet-18 weights (torchvision format), or None
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=dict(num_classes=20)))
