# Stage 1, the teacher: Faster R-CNN ResNet-101 FPN on DIOR, 24 epochs.
#   python tools/train.py configs/ds2d2/faster_rcnn_r101_dior.py
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/dior_detection.py',
    '../_base_/ds2d2_24e_runtime.py',
]
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
# Local ImageNet weights of the backbone (torchvision format), or None for random init.
# The paper's numbers start from ImageNet weights; no download happens at run time.
pretrained = None
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    roi_head=dict(bbox_head=dict(num_classes=20)))
