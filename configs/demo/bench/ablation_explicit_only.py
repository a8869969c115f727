# Comparison benchmark, ablation: the explicit stream alone (no amplifiers).
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, explicit only', group='ablation', order=140)
model = dict(amplifier_config=None, amplifier_ckpt=None,
             distill_cfg=dict(amplifiers=dict(full=0.0, high=0.0)))
