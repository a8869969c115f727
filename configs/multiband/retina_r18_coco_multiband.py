# Your own multi-band data: the student baseline, RetinaNet ResNet-18 alone, with the teacher's
# data, bands and schedule (settings in retina_r101_coco_multiband.py).
_base_ = ['./retina_r101_coco_multiband.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
