# Comparison benchmark, ablation: the explicit stream and the high-frequency amplifier only.
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, high amplifier only', group='ablation', order=170)
model = dict(distill_cfg=dict(amplifiers=dict(full=0.0, high=1.0)))
