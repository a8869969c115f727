# DroneVehicle, the infrared images alone (read as one channel: the official infrared JPEGs have
# three equal channels, cv2 converts them to grayscale), same boxes and splits as the RGB set.
_base_ = ['./dronevehicle_rgb.py']
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(data_prefix=dict(img='train/ir/'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_prefix=dict(img='val/ir/'), pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(data_prefix=dict(img='test/ir/'), pipeline=test_pipeline))
