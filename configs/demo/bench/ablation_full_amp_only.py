# Comparison benchmark, ablation: the explicit stream and the full-frequency amplifier only.
_base_ = ['./ds2d2.py']
model = dict(amplifier_config=None, amplifier_ckpt=None,
             distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0)))
