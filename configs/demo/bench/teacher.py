# Comparison benchmark: the teacher, the baseline student with a 4x wider backbone, trained once
# on the demo's full 12-epoch schedule. Its FPN and head keep the student's 32 channels, as in the
# R101 -> R18 pairs (equal FPN widths: the amplifiers read the raw student maps, and
# CrossKD can pass student head maps to the teacher's head).
_base_ = ['./baseline.py']
bench_row = dict(role='teacher')
model = dict(backbone=dict(base_channels=32), neck=dict(in_channels=[32, 64, 128, 256]))
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
