# rgbn demo stage 3, DS2D2 on 4 bands: the 1/8-width student distilled from the 4-band teacher.
# Stream weights: the RGB demo's, not the published ones (retina_distill_synthetic.py says
# why); not tuned for 4 bands.
_base_ = ['./retina_student_rgbn.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_teacher_rgbn.py',
    teacher_ckpt='work_dirs/rgbn_demo/retina_teacher_rgbn/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/retina_hfamp_rgbn.py',
    amplifier_ckpt='work_dirs/rgbn_demo/retina_hfamp_rgbn/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=0.01, lambda_high=0.01, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0)))
