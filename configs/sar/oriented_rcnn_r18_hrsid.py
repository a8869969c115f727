# SAR ships (this project's extension): the student baseline, Oriented R-CNN ResNet-18 on HRSID
# alone, one input band (ImageNet R18 stem inflated, as the teacher's), on the teacher's schedule.
#   python tools/train.py configs/sar/oriented_rcnn_r18_hrsid.py
_base_ = ['./oriented_rcnn_r101_hrsid.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
