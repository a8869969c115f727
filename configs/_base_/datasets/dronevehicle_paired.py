# DroneVehicle pairs for cross-modal distillation: LoadPairedImages stacks the RGB image (3
# channels, BGR as cv2 loads it) and the infrared one (1 channel) into one 4-channel image, so that
# Resize and RandomFlip move both alike; the layout {'rgb': (0, 3), 'ir': (3, 4)} travels in the
# metainfo (modality_channels). Only pipeline and prefix variables here: a distiller config
# inherits its student's config and this file, and puts them into the student's dataloaders
# (configs/multimodal/retina_r101_rgb_r18_ir_dronevehicle.py).
paired_modalities = dict(rgb=3, ir=1)
paired_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'modality_channels')
paired_train_pipeline = [
    dict(type='LoadPairedImages', modalities=paired_modalities),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(640, 512), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs', meta_keys=paired_meta_keys),
]
paired_test_pipeline = [
    dict(type='LoadPairedImages', modalities=paired_modalities),
    dict(type='Resize', scale=(640, 512), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=paired_meta_keys),
]
