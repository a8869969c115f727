# Stage 3, DS2D2: RetinaNet R18 student distilled from the R101 teacher on DOTA (horizontal boxes), 24 epochs.
#   python tools/train.py configs/ds2d2/retina_r101_r18_dota.py
# needs the teacher (retina_r101_dota.py) and amplifier (retina_r101_hfamp_dota.py) checkpoints.
_base_ = ['./retina_r18_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_r101_dota.py',
    teacher_ckpt='work_dirs/retina_r101_dota/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_r101_hfamp_dota.py',
    amplifier_ckpt='work_dirs/retina_r101_hfamp_dota/epoch_24.pth',
    distill_cfg=dict(
        # published RetinaNet / DOTA weights (docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=7e-5, lambda_high=5e-5, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=0.7, high=0.5),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
