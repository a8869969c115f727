# Demo stage 3, DS2D2: the 1/8-width student distilled from the demo teacher.
_base_ = ['./retina_student_synthetic.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_teacher_synthetic.py',
    teacher_ckpt='work_dirs/demo/retina_teacher_synthetic/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/retina_hfamp_synthetic.py',
    amplifier_ckpt='work_dirs/demo/retina_hfamp_synthetic/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=1.0, lambda_high=1.0, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='KDGIoULoss', loss_weight=1.0)))
