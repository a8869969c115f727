# Comparison benchmark, a heterogeneous pair (this project's extension): the bench's RetinaNet
# teacher and its high-frequency amplifier distil the RTMDet-tiny student with DS2D2's demo
# weights. The amplifiers are the teacher's RetinaNet heads, so their KD is RetinaNet's (label
# weights and positives from the amplifier head's own anchor assignment); the student's three
# levels (strides 8-32, 96 channels) meet the teacher's four (8-64, 32 channels) by stride, the
# fourth made by a stride-2 max-pooling of the student's coarsest, through the 1x1 connector
# (docs/fidelity.md). Scored and timed against the RTMDet-tiny row.
_base_ = ['./rtmdet_tiny.py']
bench_row = dict(name='DS2D2 RetinaNet->RTMDet-tiny', group='family', order=20,
                 baseline='RTMDet-tiny')
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/teacher.py',
    teacher_ckpt='work_dirs/compare/frozen/teacher/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/hfamp.py',
    amplifier_ckpt='work_dirs/compare/frozen/hfamp/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=0.01, lambda_high=0.01, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0)))
