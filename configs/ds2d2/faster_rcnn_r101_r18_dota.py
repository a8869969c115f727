# Stage 3, DS2D2: Faster R-CNN R18 student distilled from the R101 teacher on DOTA (horizontal boxes), 24 epochs.
#   python tools/train.py configs/ds2d2/faster_rcnn_r101_r18_dota.py
# needs the teacher (faster_rcnn_r101_dota.py) and amplifier (faster_rcnn_r101_hfamp_dota.py)
# checkpoints. The RPN is not distilled.
_base_ = ['./faster_rcnn_r18_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/faster_rcnn_r101_dota.py',
    teacher_ckpt='work_dirs/faster_rcnn_r101_dota/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/faster_rcnn_r101_hfamp_dota.py',
    amplifier_ckpt='work_dirs/faster_rcnn_r101_hfamp_dota/epoch_24.pth',
    distill_cfg=dict(
        # published Faster R-CNN / DOTA weights (docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=0.12, lambda_high=1.2, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.5e-3, high=3e-3),
        kd_cls=dict(type='KDKLDivLoss', temperature=3.0, loss_weight=0.5, reduction='sum'),
        kd_reg=dict(type='L1Loss', loss_weight=1.0)))
