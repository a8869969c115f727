# Comparison benchmark: FGD (focal and global distillation), its published RetinaNet defaults
# (FGDLoss), in the explicit stream's place; no amplifiers.
_base_ = ['./ds2d2.py']
bench_row = dict(name='FGD', group='method', order=40)
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(
    explicit=dict(_delete_=True, type='FGDLoss'), amplifiers=dict(full=0.0, high=0.0)))
