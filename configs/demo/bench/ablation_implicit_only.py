# Comparison benchmark, ablation: the implicit stream alone (both amplifiers, no explicit stream).
_base_ = ['./ds2d2.py']
model = dict(distill_cfg=dict(explicit=None))
