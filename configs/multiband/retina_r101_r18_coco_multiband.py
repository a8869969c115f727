# Your own multi-band data, stage 3, DS2D2: RetinaNet R18 distilled from the R101 teacher
# (settings in retina_r101_coco_multiband.py). Stream weights: the published RetinaNet / DIOR ones
# (optical RGB images); none were tuned for other bands.
_base_ = ['./retina_r18_coco_multiband.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_r101_coco_multiband.py',
    teacher_ckpt='work_dirs/retina_coco_multiband/retina_r101_coco_multiband/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_r101_hfamp_coco_multiband.py',
    amplifier_ckpt='work_dirs/retina_coco_multiband/retina_r101_hfamp_coco_multiband/epoch_24.pth',
    distill_cfg=dict(
        # published RetinaNet / DIOR weights (docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
