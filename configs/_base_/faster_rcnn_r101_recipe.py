# Faster R-CNN ResNet-101 FPN with the published DS2D2 schedule: 24 epochs, lr 0.02 at a total
# batch of 16 (see schedules/ds2d2_2x.py), backbone from ImageNet weights (torchvision, as mmdet's
# own configs; fetched once into torch's hub cache, or give a local file).
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', './schedules/ds2d2_2x.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
optim_wrapper = dict(optimizer=dict(lr=0.02))
