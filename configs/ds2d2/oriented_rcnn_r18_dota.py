# Oriented boxes (this project's extension): the student baseline, Oriented R-CNN ResNet-18 on
# DOTA alone, with the teacher's schedule (the distilled student's too: the honest comparison).
#   python tools/train.py configs/ds2d2/oriented_rcnn_r18_dota.py
_base_ = ['./oriented_rcnn_r101_dota.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
