# RTMDet on DIOR (this project's extension), stage 3: DS2D2 distils RTMDet-l into RTMDet-tiny on
# the student's own schedule. KD of the amplified predictions by the published single-stage rule
# (QFL-style BCE weighted by the dynamic soft-label assigner's label weights over its positives;
# GIoU between decoded boxes weighted by the teacher's top score); the stream weights are the
# published RetinaNet / DIOR ones, none were tuned for RTMDet.
#   python tools/train.py configs/families/rtmdet_l_tiny_dior.py
# needs the teacher (rtmdet_l_dior.py) and amplifier (rtmdet_l_hfamp_dior.py) checkpoints.
_base_ = ['./rtmdet_tiny_dior.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/rtmdet_l_dior.py',
    teacher_ckpt='work_dirs/rtmdet_l_dior/epoch_300.pth',
    amplifier_config='{{ fileDirname }}/rtmdet_l_hfamp_dior.py',
    amplifier_ckpt='work_dirs/rtmdet_l_hfamp_dior/epoch_300.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0)))
