# Stage 3, DS2D2: RetinaNet R18 student distilled from the R101 teacher on DIOR, 24 epochs.
#   python tools/train.py configs/ds2d2/retina_r101_r18_dior.py
# needs the teacher (retina_r101_dior.py) and amplifier (retina_r101_hfamp_dior.py) checkpoints.
_base_ = ['./retina_r18_dior.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_r101_dior.py',
    teacher_ckpt='work_dirs/retina_r101_dior/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_r101_hfamp_dior.py',
    amplifier_ckpt='work_dirs/retina_r101_hfamp_dior/epoch_24.pth',
    distill_cfg=dict(
        # published RetinaNet / DIOR weights (docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
# published: the authors train the distilled student at lr 0.005 (PolarAid/DS2D2
# configs/distillation/ds2d2_retinanet_r18_fpn_2x_dior.py), not the baseline's 0.02
optim_wrapper = dict(optimizer=dict(lr=0.005))
