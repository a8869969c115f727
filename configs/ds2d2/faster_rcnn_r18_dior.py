# The student baseline: Faster R-CNN ResNet-18 FPN on DIOR alone, with the teacher's schedule (the
# distilled student's too: the honest comparison).
#   python tools/train.py configs/ds2d2/faster_rcnn_r18_dior.py
_base_ = ['./faster_rcnn_r101_dior.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
