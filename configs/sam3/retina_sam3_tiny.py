# The SAM3 RetinaNet recipe with a tiny random-init trunk, for tests and CPU smoke runs.
#
# Same structure as retina_sam3_dior.py (freeze policy, spectral adapter, pyramid, FPN, head,
# progressive unfreezing, layer decay); trunk: img_size 112, patch 14, embed 32, depth 4, heads 2,
# window 4, global blocks (1, 3), no checkpoint; the last 2 blocks train.
_base_ = ['./retina_sam3_dior.py']

img_size = 112

model = dict(
    backbone=dict(
        arch='tiny',
        checkpoint=None,
        num_trainable_blocks=2,
        trunk_cfg=dict(img_size=img_size),
        adapter_cfg=dict(hidden_channels=8),
    ),
    neck=dict(in_channels=[16, 32, 32], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=1),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))  # fmt: skip

# CPU: the recipe's optimizer in a plain fp32 wrapper (mmengine's AmpOptimWrapper needs an
# accelerator), without gradient accumulation
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    clip_grad={{_base_.optim_wrapper.clip_grad}},
    constructor={{_base_.optim_wrapper.constructor}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}},
)
