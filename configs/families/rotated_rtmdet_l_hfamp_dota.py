# RTMDet-R on DOTA (this project's extension), stage 2: the high-frequency amplifier of the
# RTMDet-R-l teacher (its head from the teacher's weights, trained on the teacher's
# high-frequency maps with backbone and neck frozen), on the teacher's 36-epoch schedule.
#   python tools/train.py configs/families/rotated_rtmdet_l_hfamp_dota.py
_base_ = ['./rotated_rtmdet_l_dota.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/rotated_rtmdet_l_dota/epoch_36.pth',
    teacher_config='{{ fileDirname }}/rotated_rtmdet_l_dota.py',
    decomposer='haar')
