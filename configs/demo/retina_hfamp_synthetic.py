# Demo stage 2, high-frequency amplifier on the teacher's high-frequency maps.
_base_ = ['./retina_teacher_synthetic.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/demo/retina_teacher_synthetic/epoch_12.pth',
    teacher_config='{{ fileDirname }}/retina_teacher_synthetic.py',
    decomposer='haar')
