# The published DS2D2 schedule of every stage (teacher, high-frequency amplifier, student,
# baseline): 24 epochs of mmdet's 2x (SGD, momentum 0.9, weight decay 1e-4, lr steps at epochs
# 16 and 22, linear warm-up over 500 iterations) at a total batch of 16, with mmdet's runtime.
# The lr is the detector family's (RetinaNet 0.005, Faster R-CNN 0.02; set by the family's
# recipe base; the RetinaNet R18 DIOR baseline alone takes the authors' 0.02, in
# configs/ds2d2/retina_r18_dior.py) for a total batch of 16:
# `tools/train.py CONFIG --auto-scale-lr` (or `tools/dist_train.sh CONFIG 4 --auto-scale-lr`)
# rescales it to the run's total batch, e.g. to 0.0025 / 0.01 for 4 GPUs x 2 images.
_base_ = ['mmdet::_base_/schedules/schedule_2x.py', 'mmdet::_base_/default_runtime.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
# atomic saves: an interrupted save never loses the previous checkpoint (ds2d2_mm.engine)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3))
