# Stage 2, the high-frequency amplifier: the teacher's Faster R-CNN head trained on the teacher's
# high-frequency maps (Haar LH+HL+HH, upsampled), teacher backbone and neck frozen.
#   python tools/train.py configs/ds2d2/faster_rcnn_r101_hfamp_dior.py
_base_ = ['./faster_rcnn_r101_dior.py']
teacher_ckpt = 'work_dirs/faster_rcnn_r101_dior/epoch_24.pth'
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt=teacher_ckpt,
    teacher_config='{{ fileDirname }}/faster_rcnn_r101_dior.py',
    decomposer='haar')
# The heads start from the teacher's; 12 epochs are enough for them to adapt.
train_cfg = dict(max_epochs=12)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
