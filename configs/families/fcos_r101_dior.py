# FCOS on DIOR, this project's extension of DS2D2. Stage 1, the teacher: mmdet's FCOS with its
# improvements (fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py: centre
# sampling, distances normalised by the stride, centerness on the regression branch, GIoU; its
# 12-epoch SGD schedule at lr 0.01 for a total batch of 16) with a ResNet-101 on DIOR. mmdet has
# no caffe-style R18, so teacher and student take the torchvision backbones and normalisation of
# mmdet's own FCOS R18 / R101 configs (fcos_r{18,101}_fpn_gn-head-center-normbbox-centeronreg-
# giou_8xb8-amp-lsj-200e_coco.py) in the caffe R50's place.
#   python tools/train.py configs/families/fcos_r101_dior.py
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
          '../_base_/datasets/dior_in_family_configs.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    backbone=dict(depth=101, style='pytorch', norm_cfg=dict(type='BN', requires_grad=True),
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),
    bbox_head=dict(num_classes=20))
train_dataloader = dict(dataset={{_base_.dior_train}})
val_dataloader = dict(dataset={{_base_.dior_test}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.dior_evaluator}}
test_evaluator = val_evaluator
