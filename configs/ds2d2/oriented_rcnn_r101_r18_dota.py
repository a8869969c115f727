# Oriented boxes (this project's extension): stage 3, Oriented R-CNN R18 distilled from the R101
# teacher on DOTA, 12 epochs. The two-stage KD is the published one (KL with T = 3 on the class
# logits over the RoIs the student sampled, confidence-weighted L1 on the teacher's top-class
# deltas), here on rotated RoIs (pooled by the RoI head's own rotated RoIAlign; 5 delta
# components) and DISW takes the oriented rule: both are this project's. The stream weights are the
# published Faster R-CNN / DOTA ones (horizontal boxes); none were tuned for oriented boxes.
#   python tools/train.py configs/ds2d2/oriented_rcnn_r101_r18_dota.py
# needs the teacher (oriented_rcnn_r101_dota.py) and amplifier (oriented_rcnn_r101_hfamp_dota.py)
# checkpoints. The RPN is not distilled. tools/test.py scores whole val images (the student).
_base_ = ['./oriented_rcnn_r18_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/oriented_rcnn_r101_dota.py',
    teacher_ckpt='work_dirs/oriented_rcnn_r101_dota/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/oriented_rcnn_r101_hfamp_dota.py',
    amplifier_ckpt='work_dirs/oriented_rcnn_r101_hfamp_dota/epoch_12.pth',
    distill_cfg=dict(
        # published Faster R-CNN / DOTA weights (horizontal boxes; docs/fidelity.md)
        explicit=dict(type='DISWLoss', lambda_low=0.12, lambda_high=1.2, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.5e-3, high=3e-3),
        # published two-stage KD, on rotated RoIs
        kd_cls=dict(type='KDKLDivLoss', temperature=3.0, loss_weight=0.5, reduction='sum'),
        kd_reg=dict(type='L1Loss', loss_weight=1.0)))
