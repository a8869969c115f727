# Fine-tuning SAM3 (the SAM3 RetinaNet and the prompted SAM3, configs/sam3/): AdamW under
# autocast with gradient accumulation, 2 images per GPU x 8 GPUs x 2 accumulated steps = 32 images
# per optimizer step; linear warm-up over 500 iterations, then a cosine decay to 1% of the lr
# until the end of training (mmengine ends a scheduler without `end` at the train loop's
# max_epochs, so a recipe changes train_cfg.max_epochs alone); validation and a checkpoint every
# 2 epochs. The recipes set the lr, the weight decay, the gradient clip, the autocast dtype, the
# parameter groups and the unfreezing stages (ProgressiveUnfreezeHook in custom_hooks).
_base_ = ['mmdet::_base_/default_runtime.py']

max_epochs = 24
optim_wrapper = dict(
    type='AmpOptimWrapper',
    accumulative_counts=2,
    optimizer=dict(type='AdamW', betas=(0.9, 0.999)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min_ratio=0.01,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# atomic saves: an interrupted save never loses the previous checkpoint (ds2d2_mm.engine)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=2, max_keep_ckpts=3))
# unfreezing stages freeze modules after DDP wrapped the model
find_unused_parameters = True
auto_scale_lr = dict(enable=False, base_batch_size=32)
