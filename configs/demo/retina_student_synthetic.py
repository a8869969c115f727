# Demo student baseline: RetinaNet ResNet-18 at 1/8 width, trained alone (same schedule as the
# distilled student).
_base_ = ['./_synthetic_base.py', './_retinanet_small.py']
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
