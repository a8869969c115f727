# Stage 2, the high-frequency amplifier: the teacher's RetinaNet head, starting from the teacher's
# weights, trained 24 epochs (published) on the teacher's high-frequency maps (Haar LH+HL+HH,
# upsampled), with the teacher's backbone and neck frozen.
#   python tools/train.py configs/ds2d2/retina_r101_hfamp_dior.py
_base_ = ['./retina_r101_dior.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/retina_r101_dior/epoch_24.pth',
    teacher_config='{{ fileDirname }}/retina_r101_dior.py',
    decomposer='haar')
