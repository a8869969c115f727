# DS2D2 with a SAM3 teacher (configs/ds2d2/retina_sam3_r18_dior.py) at test size: the tiny
# random-init SAM3 RetinaNet of retina_sam3_tiny.py (FPN strides 7 ... 112, 32 channels) teaches
# a narrow ResNet-18 RetinaNet (strides 8 ... 128, 16 channels) on 96 px images, with random
# teacher and amplifier weights (allow_random_teacher). For tests and CPU smoke runs only.
_base_ = ['../ds2d2/retina_sam3_r18_dior.py']
img_size = 96  # at most the tiny trunk's 112 px, a multiple of the student's pad_size_divisor 32
model = dict(
    student=dict(
        backbone=dict(base_channels=8, init_cfg=None),  # random init: tests never download
        neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
        bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1)),
    teacher_config='{{ fileDirname }}/retina_sam3_tiny.py',
    teacher_ckpt=None,
    amplifier_config='{{ fileDirname }}/retina_sam3_tiny_hfamp.py',
    amplifier_ckpt=None,
    allow_random_teacher=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
