# Cross-modal DS2D2 (this project's extension; the paper has no cross-modal results, nothing was
# trained yet), stage 3: the infrared RetinaNet R18 student distilled from the RGB RetinaNet R101
# teacher on DroneVehicle pairs. Each batch holds both modalities (LoadPairedImages, 4 channels);
# the teacher reads the RGB channels, the student (task loss, DISW, amplifiers, predict) the
# infrared one, and both share one set of boxes. The stream weights are the published RetinaNet /
# DIOR ones (same modality, horizontal boxes); none were tuned for a cross-modal pair.
#   python tools/train.py configs/multimodal/retina_r101_rgb_r18_ir_dronevehicle.py
#   python tools/export_student.py work_dirs/retina_r101_rgb_r18_ir_dronevehicle/epoch_24.pth \
#       student_ir.pth
#   python tools/test.py configs/multimodal/retina_r18_dronevehicle_ir.py student_ir.pth
# (the exported student is a stock one-band RetinaNet: its test config reads test/ir/ alone)
_base_ = ['./retina_r18_dronevehicle_ir.py', '../_base_/datasets/dronevehicle_paired.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_r101_dronevehicle_rgb.py',
    teacher_ckpt='work_dirs/retina_r101_dronevehicle_rgb/epoch_24.pth',
    amplifier_config='{{ fileDirname }}/retina_r101_hfamp_dronevehicle_rgb.py',
    amplifier_ckpt='work_dirs/retina_r101_hfamp_dronevehicle_rgb/epoch_24.pth',
    # one normalisation per modality, in LoadPairedImages' order: the teacher's (mmdet's
    # ImageNet statistics, BGR -> RGB) and the student's own
    data_preprocessor=dict(
        type='MultiBandDetDataPreprocessor', pad_size_divisor=32,
        modalities=dict(
            rgb=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                     bgr_to_rgb=True),
            ir=dict(mean={{_base_.ir_mean}}, std={{_base_.ir_std}}))),
    distill_cfg=dict(
        teacher_input='rgb',
        student_input='ir',
        explicit=dict(type='DISWLoss', lambda_low=1e-5, lambda_high=1e-5, shared_adapter=True,
                      adapter_bias=False, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
train_dataloader = dict(dataset=dict(
    data_prefix=dict(_delete_=True, rgb='train/rgb/', ir='train/ir/'),
    pipeline={{_base_.paired_train_pipeline}}))
val_dataloader = dict(dataset=dict(
    data_prefix=dict(_delete_=True, rgb='val/rgb/', ir='val/ir/'),
    pipeline={{_base_.paired_test_pipeline}}))
test_dataloader = dict(dataset=dict(
    data_prefix=dict(_delete_=True, rgb='test/rgb/', ir='test/ir/'),
    pipeline={{_base_.paired_test_pipeline}}))
