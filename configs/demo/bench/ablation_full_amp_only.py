# Comparison benchmark, ablation: the explicit stream and the full-frequency amplifier only.
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, full amplifier only', group='ablation', order=160)
model = dict(amplifier_config=None, amplifier_ckpt=None,
             distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0)))
