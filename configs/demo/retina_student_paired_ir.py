# paired demo student baseline: the demo student (ResNet-18 at 1/8 width; its widths as in
# retina_student_synthetic.py) on the infrared images alone (<split>/ir/, one channel), trained
# alone on the distilled student's schedule. Stock mmdet parts: LoadImageFromFile(
# color_type='grayscale'), in_channels=1, DetDataPreprocessor with one mean / std value.
# This is also the test config of the exported distilled student (a plain one-band RetinaNet).
_base_ = ['./_synthetic_paired.py']
model = dict(
    data_preprocessor=dict(mean={{_base_.ir_mean}}, std={{_base_.ir_std}}, bgr_to_rgb=False),
    backbone=dict(base_channels=8, in_channels=1),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
train_dataloader = dict(dataset=dict(data_prefix=dict(img='train/ir/'),
                                     pipeline={{_base_.ir_train_pipeline}}))
val_dataloader = dict(dataset=dict(data_prefix=dict(img='val/ir/'),
                                   pipeline={{_base_.ir_test_pipeline}}))
test_dataloader = val_dataloader
