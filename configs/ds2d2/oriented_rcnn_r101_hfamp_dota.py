# Oriented boxes (this project's extension): stage 2, the high-frequency amplifier of the Oriented
# R-CNN teacher: its heads, from the teacher's weights, trained on the teacher's high-frequency
# maps (Haar LH+HL+HH, upsampled) with backbone and neck frozen, on the teacher's 12-epoch
# schedule. The oriented RPN trains with the RoI head here; only the RoI head serves as the
# amplifier afterwards.
#   python tools/train.py configs/ds2d2/oriented_rcnn_r101_hfamp_dota.py
_base_ = ['./oriented_rcnn_r101_dota.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/oriented_rcnn_r101_dota/epoch_12.pth',
    teacher_config='{{ fileDirname }}/oriented_rcnn_r101_dota.py',
    decomposer='haar')
