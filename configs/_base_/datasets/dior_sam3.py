# DIOR (./dior_detection.py) resized to SAM3's input side, flipped vertically too: the data of
# the SAM3 recipes (configs/sam3/). A recipe whose model reads another input (the prompted SAM3:
# S x S, no aspect ratio kept; the tiny test trunks: 112 px) restates the pipelines.
_base_ = ['./dior_detection.py']

img_size = 1008  # SAM3's input side; multiples of 336 avoid the trunk's window padding

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    num_workers=4, dataset=dict(filter_cfg=dict(min_size=1), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
