# rgbn demo stage 2, the high-frequency amplifier of the 4-band teacher.
_base_ = ['./retina_teacher_rgbn.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/rgbn_demo/retina_teacher_rgbn/epoch_12.pth',
    teacher_config='{{ fileDirname }}/retina_teacher_rgbn.py',
    decomposer='haar')
