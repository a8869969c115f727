# Teacher-student gap (DS2D2, IEEE TGRS 2025), stage 1 with a stronger teacher: RetinaNet
# ResNeXt-101 (64x4d) FPN on DIOR, the R101 teacher's recipe (../retina_r101_dior.py: 24 epochs,
# lr 0.005 at a total batch of 16, DIOR at 800 px) with mmdet's ResNeXt backbone exactly as
# mmdet's own retinanet/retinanet_x101-64x4d_fpn_1x_coco.py sets it (groups 64, base width 4,
# ImageNet init from open-mmlab://resnext101_64x4d).
#   python tools/train.py configs/ds2d2/gap/retina_x101_dior.py
_base_ = ['../retina_r101_dior.py']
model = dict(
    backbone=dict(
        type='ResNeXt',
        depth=101,
        groups=64,
        base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_64x4d')))
