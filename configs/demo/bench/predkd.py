# Comparison benchmark: plain prediction KD (the student's own head mimics the teacher's: sigmoid
# BCE to the teacher's probabilities, GIoU between decoded boxes), no explicit stream.
_base_ = ['./ds2d2.py']
bench_row = dict(name='prediction KD', group='method', order=80)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=None, amplifiers=dict(full=0.0, high=0.0),
    implicit=dict(type='PredictionKD', weight=1.0),
    kd_cls=dict(type='KDQualityFocalLoss', beta=0.0, loss_weight=1.0)))
