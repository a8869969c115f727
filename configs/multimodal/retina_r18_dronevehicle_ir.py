# Cross-modal DS2D2 (this project's extension): the student baseline, RetinaNet ResNet-18 on
# DroneVehicle's infrared images alone (one channel), with the teacher's schedule. Its stem is
# ImageNet's RGB stem summed into one input channel (PretrainedInflated), and its inputs are
# normalised with ImageNet's RGB statistics averaged over the channels (mean 114.495, std 57.63),
# so that a gray image meets the inflated stem as the RGB stem met a colour one. These are a
# choice, not measured on DroneVehicle's infrared images; put your own in both this file and the
# distiller's modalities.ir (the distiller checks that they agree).
# This is also the test config of the exported distilled student: it reads the infrared images
# alone (test/ir/), with stock mmdet parts (LoadImageFromFile(color_type='grayscale'),
# DetDataPreprocessor with one mean/std value).
#   python tools/train.py configs/multimodal/retina_r18_dronevehicle_ir.py
_base_ = ['../_base_/retinanet_r101_recipe.py', '../_base_/datasets/dronevehicle_ir.py']
ir_mean, ir_std = [114.495], [57.63]
model = dict(
    bbox_head=dict(num_classes=5),
    data_preprocessor=dict(mean=ir_mean, std=ir_std, bgr_to_rgb=False),
    backbone=dict(depth=18, in_channels=1,
                  init_cfg=dict(type='PretrainedInflated', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
