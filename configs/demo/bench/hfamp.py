# Comparison benchmark: the teacher's high-frequency amplifier stage.
_base_ = ['./teacher.py']
bench_row = dict(role='amplifier')
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/compare/frozen/teacher/epoch_12.pth',
    teacher_config='{{ fileDirname }}/teacher.py',
    decomposer='haar')
