# rgbn demo student baseline: the demo student (ResNet-18 at 1/8 width; its widths as in
# retina_student_synthetic.py) on the 4-band scenes, alone, on the distilled student's schedule.
_base_ = ['./_synthetic_rgbn.py']
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
