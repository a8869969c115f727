# Comparison benchmark: PKD (MSE of per-channel standardised FPN maps), its published RetinaNet
# weight (PKDLoss, loss_weight 10) on all 4 levels of this 4-level FPN (the published configs
# distil the first 4 of 5); no amplifiers.
_base_ = ['./ds2d2.py']
bench_row = dict(name='PKD', group='method', order=50)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=dict(_delete_=True, type='PKDLoss'), amplifiers=dict(full=0.0, high=0.0)))
