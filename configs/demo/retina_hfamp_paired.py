# paired demo stage 2, the high-frequency amplifier of the RGB teacher, on the RGB images.
_base_ = ['./retina_teacher_paired.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/paired_demo/retina_teacher_paired/epoch_12.pth',
    teacher_config='{{ fileDirname }}/retina_teacher_paired.py',
    decomposer='haar')
