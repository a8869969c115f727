# Cross-modal DS2D2 (this project's extension), stage 2, the high-frequency amplifier: the RGB
# teacher's RetinaNet head, from the teacher's weights, trained 24 epochs on the teacher's
# high-frequency maps of the RGB images, the teacher's backbone and neck frozen.
#   python tools/train.py configs/multimodal/retina_r101_hfamp_dronevehicle_rgb.py
_base_ = ['./retina_r101_dronevehicle_rgb.py']
model = dict(
    _delete_=True,
    type='HighFrequencyAmplifier',
    detector={{_base_.model}},
    teacher_ckpt='work_dirs/retina_r101_dronevehicle_rgb/epoch_24.pth',
    teacher_config='{{ fileDirname }}/retina_r101_dronevehicle_rgb.py',
    decomposer='haar')
