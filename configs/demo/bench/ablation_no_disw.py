# Comparison benchmark, ablation: the explicit stream without DISW weights (plain MSE per band).
_base_ = ['./ds2d2.py']
model = dict(distill_cfg=dict(explicit=dict(use_disw=False)))
