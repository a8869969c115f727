# Comparison benchmark on the built-in synthetic scenes (tools/compare.py --preset demo): the
# student baseline. Every row of the table trains this student on this schedule and is scored on
# the fixed test split, which nothing is tuned on (the demo's weights were chosen on the val
# split). The schedule is the demo's (AdamW, cosine) shortened to 6 epochs so that 16 rows x 3
# seeds fit 2 hours of a 2-core CPU; no validation during training (the runner tests at the end).
# Every config in this folder declares its line of the table in `bench_row` (name, group, order)
# or its role (the teacher, the amplifier); ds2d2_mm.tooling.compare reads it from the file.
_base_ = ['../retina_student_synthetic.py']
bench_row = dict(name='baseline', group='baseline', order=10)
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
test_dataloader = dict(dataset=dict(ann_file='annotations/test.json'))
test_evaluator = dict(ann_file='data/synthetic_aerial/annotations/test.json')
