# Teacher-student gap (DS2D2, IEEE TGRS 2025), stage 3 with the ResNeXt-101 teacher: the R18
# student of ../retina_r101_r18_dior.py (the published RetinaNet / DIOR weights, 24 epochs)
# distilled from retina_x101_dior.py through its amplifier retina_x101_hfamp_dior.py. Both FPNs
# have 256 channels and the same strides, so the amplifiers read the raw student maps.
#   python tools/train.py configs/ds2d2/gap/retina_x101_r18_dior.py
# needs the teacher (retina_x101_dior.py) and amplifier (retina_x101_hfamp_dior.py) checkpoints.
# Compare with the R18 baseline ../retina_r18_dior.py.
_base_ = ['../retina_r101_r18_dior.py']
model = dict(
    teacher_config='{{ fileDirname }}/retina_x101_dior.py',
    teacher_ckpt='work_dirs/retina_x101_dior/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_x101_hfamp_dior.py',
    amplifier_ckpt='work_dirs/retina_x101_hfamp_dior/epoch_24.pth')
