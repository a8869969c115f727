# Comparison benchmark, ablation: the explicit stream without DISW weights (plain MSE per band).
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, no DISW', group='ablation', order=130)
model = dict(distill_cfg=dict(explicit=dict(use_disw=False)))
