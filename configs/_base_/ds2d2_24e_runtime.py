# The published DS2D2 recipe: 24 epochs, SGD, lr 0.005 at batch 2 per GPU; mmdet's runtime.
_base_ = ['mmdet::_base_/schedules/schedule_2x.py', 'mmdet::_base_/default_runtime.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=0.0001))
# --auto-scale-lr rescales lr 0.005 from a total batch of 2 to the run's total batch.
auto_scale_lr = dict(enable=False, base_batch_size=2)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
