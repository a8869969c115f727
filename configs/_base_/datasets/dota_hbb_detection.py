# DOTA v1.0 with horizontal boxes (15 classes): 1024 x 1024 patches with 200 px overlap, cut by
#   python tools/data/split_dota.py --src data/DOTA/train --out data/DOTA/split_1024/trainval \
#       --coco-json data/DOTA/split_1024/trainval/hbb.json
#   python tools/data/split_dota.py --src data/DOTA/val --out data/DOTA/split_1024/val \
#       --coco-json data/DOTA/split_1024/val/hbb.json
# (file_name in the json is relative to the split folder). Scored per patch with CocoMetric.
dataset_type = 'DOTAHBBDataset'
data_root = 'data/DOTA/split_1024/'
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='trainval/hbb.json',
        data_prefix=dict(img='trainval/'),
        # the authors' (PolarAid/DS2D2 configs/_base_/datasets/dota.py) and mmdet's COCO value:
        # images with a side under 32 px are left out (none of the patches that
        # tools/data/split_dota.py cuts: it zero-pads them to 1024 x 1024)
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val/hbb.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'val/hbb.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
