# Teacher-student gap (DS2D2, IEEE TGRS 2025): DS2D2 with an R50 student of the R101 teacher on
# DIOR, 24 epochs: ../retina_r101_r18_dior.py (the same teacher and amplifier checkpoints, the
# published RetinaNet / DIOR weights) with the student of retina_r50_dior.py.
#   python tools/train.py configs/ds2d2/gap/retina_r101_r50_dior.py
# needs the teacher (../retina_r101_dior.py) and amplifier (../retina_r101_hfamp_dior.py)
# checkpoints. Compare with the R50 baseline retina_r50_dior.py.
_base_ = ['../retina_r101_r18_dior.py']
model = dict(
    student=dict(
        backbone=dict(depth=50, init_cfg=dict(checkpoint='torchvision://resnet50')),
        neck=dict(in_channels=[256, 512, 1024, 2048])))
