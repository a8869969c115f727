# Stage 2, the high-frequency amplifier: the teacher's Faster R-CNN heads, starting from the
# teacher's weights, trained 24 epochs (published) on the teacher's high-frequency maps (Haar
# LH+HL+HH, upsampled), with the teacher's backbone and neck frozen. The RPN trains with the RoI
# head here; only the RoI head serves as the amplifier afterwards.
#   python tools/train.py configs/ds2d2/faster_rcnn_r101_hfamp_dota.py
_base_ = ['./faster_rcnn_r101_dota.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/faster_rcnn_r101_dota/epoch_24.pth',
    teacher_config='{{ fileDirname }}/faster_rcnn_r101_dota.py',
    decomposer='haar')
