# Comparison benchmark: DS2D2 with the demo's stream weights, chosen on the demo's val split
# (not the published DIOR/DOTA values, which are for 256-channel FPNs and 24 epochs).
_base_ = ['./baseline.py']
bench_row = dict(name='DS2D2', group='ds2d2', order=20)
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
