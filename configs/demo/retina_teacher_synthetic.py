# Demo stage 1, teacher: RetinaNet ResNet-18 (half width) on the built-in synthetic data, CPU.
_base_ = ['./_synthetic_base.py', './_retinanet_small.py']
model = dict(backbone=dict(base_channels=32), neck=dict(in_channels=[32, 64, 128, 256]))
