# RTMDet-R on DOTA (this project's extension), a heterogeneous pair: the Oriented R-CNN R101
# teacher (configs/ds2d2/oriented_rcnn_r101_dota.py, 12 epochs) and its high-frequency amplifier
# (configs/ds2d2/oriented_rcnn_r101_hfamp_dota.py) distil RTMDet-R-s on the student's schedule.
# The amplifiers are the teacher's RoI heads, so their KD is the two-stage one (KL at T = 3 and
# L1 on the deltas) on RoIs the teacher samples from its own proposals; the student's levels
# (strides 8-32) meet the teacher's (4-64) by stride: the stride-4 level is the student's
# stride-8 map resized, the stride-64 one its stride-32 map max-pooled (docs/fidelity.md).
#   python tools/train.py configs/families/oriented_rcnn_r101_rotated_rtmdet_s_dota.py
_base_ = ['./rotated_rtmdet_s_dota.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/../ds2d2/oriented_rcnn_r101_dota.py',
    teacher_ckpt='work_dirs/oriented_rcnn_r101_dota/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/../ds2d2/oriented_rcnn_r101_hfamp_dota.py',
    amplifier_ckpt='work_dirs/oriented_rcnn_r101_hfamp_dota/epoch_12.pth',
    distill_cfg=dict(
        explicit=dict(type='DISWLoss', lambda_low=7e-5, lambda_high=5e-5, decomposer='haar'),
        amplifiers=dict(full=0.7, high=0.5)))
