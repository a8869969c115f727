# The prompted SAM3 recipe (sam3_prompted_dior.py) with the tiny random-init SAM3 on the
# built-in synthetic scenes (python tools/data/make_synthetic.py writes data/synthetic_aerial):
# CPU-sized, for tests and smoke runs. The tiny text encoder uses the tiny BPE vocabulary,
# written on first use into ~/.cache/ds2d2_mm/sam3 (or $DS2D2_CACHE/sam3).
#   python tools/train.py configs/sam3/sam3_prompted_tiny_synthetic.py
_base_ = ['./sam3_prompted_dior.py']

arch = 'tiny'
img_size = 112
dataset_type = 'SyntheticAerialDataset'
data_root = 'data/synthetic_aerial/'
max_epochs = 3

model = dict(
    arch=arch,
    checkpoint=None,
    bpe_path=None,  # the tiny vocabulary
    img_size=img_size,
    classes=dataset_type,  # its METAINFO classes, in label order
    class_prompts={'storagetank': 'storage tank'},
    num_trainable_blocks=2,
    adapter_cfg=dict(hidden_channels=8),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]  # fmt: skip
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/train.json',
                 filter_cfg=dict(min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/val.json',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

# CPU: plain fp32 optimizer wrapper (mmengine's AmpOptimWrapper needs an accelerator)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    accumulative_counts=2,
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={'sam3.backbone.vision_backbone.trunk': dict(lr_mult=2.5e-5 / 8e-5)},
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
    ),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min_ratio=0.01,
         convert_to_iter_based=True),  # ends at max_epochs
]  # fmt: skip
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
custom_hooks = [
    dict(
        type='ProgressiveUnfreezeHook',
        by_epoch=True,
        stages=[
            dict(begin=0, trainable={{_base_.vit_prefixes}}),
            dict(begin=1, trainable={{_base_.head_prefixes}}),
            dict(begin=2, trainable={{_base_.all_prefixes}}),
        ],
    ),
]
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', interval=max_epochs, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=10),
)
