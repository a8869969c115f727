# Teacher-student gap, stage 2 for the ResNeXt-101 teacher: its high-frequency amplifier, the
# teacher's RetinaNet head from the teacher's weights trained 24 epochs on the teacher's
# high-frequency maps (Haar LH+HL+HH, upsampled), backbone and neck frozen, as
# ../retina_r101_hfamp_dior.py does for the R101 teacher.
#   python tools/train.py configs/ds2d2/gap/retina_x101_hfamp_dior.py
_base_ = ['./retina_x101_dior.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/retina_x101_dior/epoch_24.pth',
    teacher_config='{{ fileDirname }}/retina_x101_dior.py',
    decomposer='haar')
