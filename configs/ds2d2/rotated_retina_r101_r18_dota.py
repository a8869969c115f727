# Oriented boxes (this project's extension): stage 3, rotated RetinaNet R18 distilled from the R101
# teacher on DOTA. DISW takes the oriented rule and the regression KD compares rotated boxes with
# a Gaussian (KLD) distance: both are this project's. The stream weights are the published
# RetinaNet / DOTA ones (horizontal boxes); none were tuned for oriented boxes.
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
        # published RetinaNet / DOTA weights (horizontal boxes)
        explicit=dict(type='DISWLoss', lambda_low=7e-5, lambda_high=5e-5, decomposer='haar'),
        amplifiers=dict(full=0.7, high=0.5),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        # this project's: Gaussian-distance KD between rotated boxes
        kd_reg=dict(type='KDRotatedGDLoss', loss_type='kld', loss_weight=1.0)))
