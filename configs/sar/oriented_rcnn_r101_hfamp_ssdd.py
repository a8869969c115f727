# SAR ships (this project's extension): stage 2, the high-frequency amplifier of the SSDD
# teacher: its heads, from the teacher's weights, trained on the teacher's high-frequency maps
# (Haar LH+HL+HH, upsampled) with backbone and neck frozen, on the teacher's schedule.
#   python tools/train.py configs/sar/oriented_rcnn_r101_hfamp_ssdd.py
_base_ = ['./oriented_rcnn_r101_ssdd.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/oriented_rcnn_r101_ssdd/epoch_72.pth',
    teacher_config='{{ fileDirname }}/oriented_rcnn_r101_ssdd.py',
    decomposer='haar')
