# RTMDet-R on DOTA (this project's extension), stage 3: DS2D2 distils RTMDet-R-l into
# RTMDet-R-tiny on the student's schedule. KD of the amplified predictions by the published
# single-stage rule with the oriented boxes compared by this project's Gaussian (KLD) distance;
# DISW takes the oriented rule. The stream weights are the published RetinaNet / DOTA ones
# (horizontal boxes); none were tuned for RTMDet-R.
#   python tools/train.py configs/families/rotated_rtmdet_l_tiny_dota.py
_base_ = ['./rotated_rtmdet_tiny_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/rotated_rtmdet_l_dota.py',
    teacher_ckpt='work_dirs/rotated_rtmdet_l_dota/epoch_36.pth',
    amplifier_config='{{ fileDirname }}/rotated_rtmdet_l_hfamp_dota.py',
    amplifier_ckpt='work_dirs/rotated_rtmdet_l_hfamp_dota/epoch_36.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=7e-5, lambda_high=5e-5, decomposer='haar'),
        amplifiers=dict(full=0.7, high=0.5)))
