# Comparison benchmark, ablation: the explicit stream and the high-frequency amplifier only.
_base_ = ['./ds2d2.py']
model = dict(distill_cfg=dict(amplifiers=dict(full=0.0, high=1.0)))
