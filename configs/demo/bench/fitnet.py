# Comparison benchmark: FitNet (MSE of 1x1-adapted student FPN maps to the teacher's), its
# published RetinaNet defaults (FitNetLoss), in the explicit stream's place; no amplifiers.
_base_ = ['./ds2d2.py']
bench_row = dict(name='FitNet', group='method', order=30)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=dict(_delete_=True, type='FitNetLoss'), amplifiers=dict(full=0.0, high=0.0)))
