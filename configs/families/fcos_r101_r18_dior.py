# FCOS on DIOR (this project's extension), stage 3: DS2D2 distils FCOS R101 into FCOS R18. KD
# of the amplified predictions by the published single-stage rule (QFL-style BCE weighted by the
# assigner's label weights over its positives; GIoU between decoded boxes weighted by the
# teacher's top score; the centerness branch enters no term); the stream weights are the
# published RetinaNet / DIOR ones, none were tuned for FCOS.
#   python tools/train.py configs/families/fcos_r101_r18_dior.py
_base_ = ['./fcos_r18_dior.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/fcos_r101_dior.py',
    teacher_ckpt='work_dirs/fcos_r101_dior/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/fcos_r101_hfamp_dior.py',
    amplifier_ckpt='work_dirs/fcos_r101_hfamp_dior/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0)))
