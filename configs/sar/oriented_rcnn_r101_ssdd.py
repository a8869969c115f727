# SAR ships, this project's extension of DS2D2 (no published DS2D2 SAR values exist).
# Stage 1, the teacher: mmrotate's Oriented R-CNN (le90) on SSDD (data/ssdd/ as mmrotate's
# _base_/datasets/ssdd.py lays it out: COCO json with ship polygons, 1 class) on mmrotate's own 6x
# schedule (72 epochs), with a ResNet-101 from ImageNet weights inflated to ONE input band:
# _one_band.py says why and how. mmrotate ships SSDD / HRSID configs for Oriented R-CNN only, so
# the SAR recipe is the two-stage one.
#   python tools/train.py configs/sar/oriented_rcnn_r101_ssdd.py
_base_ = ['mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_6x_ssdd.py', './_one_band.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(
    data_preprocessor={{_base_.one_band_preprocessor}},
    backbone={{_base_.one_band_r101}})
# mmrotate's ssdd.py pipelines with the one-band loader (lists are replaced, not merged)
train_pipeline = [
    {{_base_.one_band_loader}},
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='ConvertMask2BoxType', box_type='rbox'),
    dict(type='mmdet.Resize', scale=(512, 512), keep_ratio=True),
    dict(type='mmdet.RandomFlip', prob=0.75, direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='mmdet.PackDetInputs'),
]
val_pipeline = [
    {{_base_.one_band_loader}},
    dict(type='mmdet.Resize', scale=(512, 512), keep_ratio=True),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='ConvertMask2BoxType', box_type='qbox'),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'instances')),
]
test_pipeline = [
    {{_base_.one_band_loader}},
    dict(type='mmdet.Resize', scale=(512, 512), keep_ratio=True),
    dict(type='mmdet.PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
