# The oriented-box student baseline: rotated RetinaNet ResNet-18 on DOTA alone, same schedule.
#   python tools/train.py configs/ds2d2/rotated_retina_r18_dota.py
_base_ = ['./rotated_retina_r101_dota.py']
pretrained = None  # local ImageNet ResNet-18 weights (torchvision format), or None
model = dict(
    backbone=dict(
        depth=18,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    neck=dict(in_channels=[64, 128, 256, 512]))
