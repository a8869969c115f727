# paired demo stage 3, cross-modal DS2D2 (this project's extension): the 1/8-width infrared
# student distilled from the RGB teacher. Each batch holds both modalities (LoadPairedImages, 4
# channels); the teacher reads the RGB channels, the student (task loss, DISW, amplifiers,
# predict) the infrared one, with one set of boxes. Validation also feeds pairs (the distiller's
# predict slices the infrared channel); the exported student is evaluated in
# retina_student_paired_ir.py on the infrared images alone.
# Stream weights: the RGB demo's, not the published ones (retina_distill_synthetic.py says why);
# not tuned for a modality gap.
_base_ = ['./retina_student_paired_ir.py']
model = dict(
    _delete_=True,
    type='SpectralDistiller',
    student={{_base_.model}},
    teacher_config='{{ fileDirname }}/retina_teacher_paired.py',
    teacher_ckpt='work_dirs/paired_demo/retina_teacher_paired/epoch_12.pth',
    amplifier_config='{{ fileDirname }}/retina_hfamp_paired.py',
    amplifier_ckpt='work_dirs/paired_demo/retina_hfamp_paired/epoch_12.pth',
    # one normalisation per modality, in LoadPairedImages' order: the teacher's and the student's
    data_preprocessor=dict(
        type='MultiBandDetDataPreprocessor', pad_size_divisor=32,
        modalities=dict(
            rgb=dict(mean={{_base_.rgb_mean}}, std={{_base_.rgb_std}}, bgr_to_rgb=True),
            ir=dict(mean={{_base_.ir_mean}}, std={{_base_.ir_std}}))),
    distill_cfg=dict(
        teacher_input='rgb',
        student_input='ir',
        explicit=dict(type='DISWLoss', lambda_low=0.01, lambda_high=0.01, decomposer='haar'),
        amplifiers=dict(full=1.0, high=1.0)))
paired_dataset_type = 'SyntheticPairedDataset'
train_dataloader = dict(dataset=dict(
    type=paired_dataset_type,
    data_prefix=dict(_delete_=True, rgb='train/rgb/', ir='train/ir/'),
    pipeline={{_base_.paired_train_pipeline}}))
val_dataloader = dict(dataset=dict(
    type=paired_dataset_type,
    data_prefix=dict(_delete_=True, rgb='val/rgb/', ir='val/ir/'),
    pipeline={{_base_.paired_test_pipeline}}))
test_dataloader = val_dataloader
