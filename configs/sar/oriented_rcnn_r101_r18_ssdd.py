# SAR ships (this project's extension; no published DS2D2 SAR values exist): stage 3, Oriented
# R-CNN R18 distilled from the R101 teacher on SSDD, one input band, on the teacher's schedule.
# The pieces are the project's rotated DS2D2 (configs/ds2d2/oriented_rcnn_r101_r18_dota.py):
# oriented DISW, the published two-stage KD on rotated RoIs. The stream weights are the
# published Faster R-CNN / DOTA ones (optical images, horizontal boxes); none were tuned for SAR.
#   python tools/train.py configs/sar/oriented_rcnn_r101_r18_ssdd.py
# needs the teacher (oriented_rcnn_r101_ssdd.py) and amplifier (oriented_rcnn_r101_hfamp_ssdd.py)
# checkpoints; or run all stages with: python tools/pipeline.py --preset oriented_rcnn_ssdd
_base_ = ['./oriented_rcnn_r18_ssdd.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/oriented_rcnn_r101_ssdd.py',
    teacher_ckpt='work_dirs/oriented_rcnn_r101_ssdd/epoch_72.pth',
    amplifier_config='{{ fileDirname }}/oriented_rcnn_r101_hfamp_ssdd.py',
    amplifier_ckpt='work_dirs/oriented_rcnn_r101_hfamp_ssdd/epoch_72.pth',
    distill_cfg=dict(
        # published Faster R-CNN / DOTA weights (horizontal boxes; docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=0.12, lambda_high=1.2, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.5e-3, high=3e-3),
        # published two-stage KD, on rotated RoIs
        kd_cls=dict(type='KDKLDivLoss', temperature=3.0, loss_weight=0.5, reduction='sum'),
        kd_reg=dict(type='L1Loss', loss_weight=1.0)))
