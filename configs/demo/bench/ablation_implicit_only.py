# Comparison benchmark, ablation: the implicit stream alone (both amplifiers, no explicit stream).
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, implicit only', group='ablation', order=150)
model = dict(distill_cfg=dict(explicit=None))
