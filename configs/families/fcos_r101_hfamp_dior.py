# FCOS on DIOR (this project's extension), stage 2: the high-frequency amplifier, the teacher's
# head from its weights trained on its high-frequency maps with backbone and neck frozen, on the
# teacher's schedule.
#   python tools/train.py configs/families/fcos_r101_hfamp_dior.py
_base_ = ['./fcos_r101_dior.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/fcos_r101_dior/epoch_12.pth',
    teacher_config='{{ fileDirname }}/fcos_r101_dior.py',
    decomposer='haar')
