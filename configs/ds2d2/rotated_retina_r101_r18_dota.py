# Stage 3, DS2D2 for oriented boxes: rotated RetinaNet R18 distilled from the R101 teacher on
# DOTA. DISW takes the oriented rule; the regression KD compares rotated boxes with a Gaussian
# (KLD) distance. The weights are the RetinaNet / DIOR ones: no DOTA weights are published here.
#   python tools/train.py configs/ds2d2/rotated_retina_r101_r18_dota.py
_base_ = ['./rotated_retina_r18_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/rotated_retina_r101_dota.py',
    teacher_ckpt='work_dirs/rotated_retina_r101_dota/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/rotated_retina_r101_hfamp_dota.py',
    amplifier_ckpt='work_dirs/rotated_retina_r101_hfamp_dota/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='KDRotatedGDLoss', loss_type='kld', loss_weight=1.0)))
