# Oriented boxes (this project's extension): the student baseline, rotated RetinaNet ResNet-18 on
# DOTA alone, with the teacher's schedule.
#   python tools/train.py configs/ds2d2/rotated_retina_r18_dota.py
_base_ = ['./rotated_retina_r101_dota.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
