# ATSS on DIOR (this project's extension): the student baseline, ATSS R18 (torchvision ImageNet
# backbone) alone on the teacher's schedule.
#   python tools/train.py configs/families/atss_r18_dior.py
_base_ = ['./atss_r101_dior.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
