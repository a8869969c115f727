# The paired RGB / infrared variant of the built-in scenes (ds2d2-make-synthetic --variant paired:
# <split>/rgb/NNNNN.png, the RGB scene, and <split>/ir/NNNNN.png, one thermal-like band; one COCO
# json per split whose file_name both folders share) with the demo's small RetinaNet. Shared by
# the paired demo stages (preset paired_demo: an RGB teacher distilled into an infrared student).
# The dataloaders here read the RGB images (the teacher and its amplifier); the infrared student
# points them at ir/ and the distiller at both folders, with the pipelines and normalisations
# defined below.
# The data folder is data/synthetic_paired/ unless the environment variable DS2D2_PAIRED_ROOT
# names another (mmengine substitutes it when the config is read; the pipeline sets it for
# --data-root), so that the teacher's config, which the amplifier and distiller stages read again,
# finds the same images.
_base_ = ['./_synthetic_base.py', './_retinanet_small.py']
data_root = '{{$DS2D2_PAIRED_ROOT:data/synthetic_paired}}/'
train_dataloader = dict(dataset=dict(data_root=data_root, data_prefix=dict(img='train/rgb/')))
val_dataloader = dict(dataset=dict(data_root=data_root, data_prefix=dict(img='val/rgb/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

# The teacher's normalisation: the RGB demo's (mmdet's ImageNet statistics, BGR -> RGB).
rgb_mean = {{_base_.model.data_preprocessor.mean}}
rgb_std = {{_base_.model.data_preprocessor.std}}
# The infrared student's: mean and std of the infrared pixels of the train split of the demo's
# data (240 images of 192 px, seed 0; measured with numpy over every pixel). Other seeds or sizes
# give nearly the same values; the student configs and the distiller's modalities.ir share them
# (the distiller checks that they agree).
ir_mean, ir_std = [117.51], [28.68]

# The infrared images alone (one channel, stock mmcv loader): the infrared student's pipelines.
ir_train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
ir_test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# Both modalities stacked into one 4-channel image (RGB as BGR, as cv2 loads it, then infrared),
# so that Resize and RandomFlip move them alike; the layout travels as modality_channels.
paired_modalities = dict(rgb=3, ir=1)
paired_train_pipeline = [
    dict(type='LoadPairedImages', modalities=paired_modalities),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'modality_channels')),
]
paired_test_pipeline = [
    dict(type='LoadPairedImages', modalities=paired_modalities),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'modality_channels')),
]
