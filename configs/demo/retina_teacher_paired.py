# paired demo stage 1, teacher: the demo teacher (RetinaNet ResNet-18, half width; its widths as in
# retina_teacher_synthetic.py) on the RGB images of the paired scenes (<split>/rgb/, the RGB
# scenes themselves), from scratch, CPU.
_base_ = ['./_synthetic_paired.py']
model = dict(backbone=dict(base_channels=32), neck=dict(in_channels=[32, 64, 128, 256]))
