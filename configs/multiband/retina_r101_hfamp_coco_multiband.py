# Your own multi-band data, stage 2: the teacher's high-frequency amplifier (settings in
# retina_r101_coco_multiband.py).
_base_ = ['./retina_r101_coco_multiband.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/retina_coco_multiband/retina_r101_coco_multiband/epoch_24.pth',
    teacher_config='{{ fileDirname }}/retina_r101_coco_multiband.py',
    decomposer='haar')
