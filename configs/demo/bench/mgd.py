# Comparison benchmark: MGD (masked generative distillation), its published RetinaNet defaults
# (MGDLoss), in the explicit stream's place; no amplifiers.
_base_ = ['./ds2d2.py']
bench_row = dict(name='MGD', group='method', order=60)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=dict(_delete_=True, type='MGDLoss'), amplifiers=dict(full=0.0, high=0.0)))
