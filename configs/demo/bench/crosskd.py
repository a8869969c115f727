# Comparison benchmark: CrossKD (student head maps, after their ReLUs, continued through the
# teacher's head) in the implicit stream's place. The official RetinaNet setting reuses the
# teacher head from its conv 3 of 4; this head has 2 convs, so from conv 1 (this project's
# choice). KD losses as published (KDQualityFocalLoss beta 1, GIoULoss), no explicit stream.
# The student's FPN keeps the baseline's add_extra_convs='on_input' (the official CrossKD
# students use 'on_output'): every row trains one student (configs/compare/README.md).
_base_ = ['./ds2d2.py']
bench_row = dict(name='CrossKD', group='method', order=70)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=None, amplifiers=dict(full=0.0, high=0.0),
    implicit=dict(type='CrossKD', weight=1.0, reused_teacher_head_idx=1)))
