# RTMDet on DIOR (this project's extension), stage 2: the high-frequency amplifier, RTMDet-l's
# head from the teacher's weights trained on the teacher's high-frequency maps (Haar LH+HL+HH,
# upsampled) with backbone and neck frozen, on the teacher's schedule.
#   python tools/train.py configs/families/rtmdet_l_hfamp_dior.py
_base_ = ['./rtmdet_l_dior.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/rtmdet_l_dior/epoch_300.pth',
    teacher_config='{{ fileDirname }}/rtmdet_l_dior.py',
    decomposer='haar')
