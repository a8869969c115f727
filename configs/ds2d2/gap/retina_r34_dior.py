# Teacher-student gap (DS2D2, IEEE TGRS 2025): the R34 student baseline, RetinaNet ResNet-34 FPN
# on DIOR alone, with the teacher's schedule (24 epochs, lr 0.005: the distilled students' too;
# the authors released no RetinaNet baseline of this depth on DIOR, and the R18 baseline
# ../retina_r18_dior.py ships their R18 one's 0.02). ImageNet init from torchvision's
# ResNet-34, as mmdet's own configs name ImageNet backbones.
#   python tools/train.py configs/ds2d2/gap/retina_r34_dior.py
_base_ = ['../retina_r101_dior.py']
model = dict(
    backbone=dict(depth=34, init_cfg=dict(checkpoint='torchvision://resnet34')),
    neck=dict(in_channels=[64, 128, 256, 512]))
