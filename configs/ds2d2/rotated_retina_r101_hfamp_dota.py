# Oriented boxes (this project's extension): stage 2, the high-frequency amplifier of the rotated
# teacher (its head, from the teacher's weights, trained on the teacher's high-frequency maps with
# backbone and neck frozen), on the teacher's 12-epoch schedule.
#   python tools/train.py configs/ds2d2/rotated_retina_r101_hfamp_dota.py
_base_ = ['./rotated_retina_r101_dota.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/rotated_retina_r101_dota/epoch_12.pth',
    teacher_config='{{ fileDirname }}/rotated_retina_r101_dota.py',
    decomposer='haar')
