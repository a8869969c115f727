# The 4-band variant of the built-in scenes (ds2d2-make-synthetic --variant rgbn: R, G, B, NIR,
# uint16 TIFFs, the RGB scenes' boxes) with the demo's small RetinaNet, read by
# LoadMultiBandImage and normalised per band by the train split's band statistics, which the
# generator writes next to the data. Shared by the rgbn demo stages (preset rgbn_demo).
# The data folder is data/synthetic_rgbn/ unless the environment variable DS2D2_RGBN_ROOT names
# another (mmengine substitutes it when the config is read; the pipeline sets it for --data-root),
# so that the teacher's config, which the amplifier and distiller stages read again, finds the
# same band statistics.
_base_ = ['./_synthetic_base.py', './_retinanet_small.py']
data_root = '{{$DS2D2_RGBN_ROOT:data/synthetic_rgbn}}/'
bands = 4
train_pipeline = [
    dict(type='LoadMultiBandImage', expected_bands=bands),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadMultiBandImage', expected_bands=bands),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
model = dict(
    data_preprocessor=dict(_delete_=True, type='MultiBandDetDataPreprocessor',
                           stats_file=data_root + 'band_stats.json', pad_size_divisor=32),
    backbone=dict(in_channels=bands))
