# Oriented boxes, this project's extension of DS2D2 (the paper distils horizontal boxes only).
# Stage 1, the teacher: mmrotate's Oriented R-CNN (le90) with ResNet-101 on DOTA v1.0 split by
# tools/data/split_dota.py into data/DOTA/split_1024/{trainval,val}, on mmrotate's own 1x schedule
# (12 epochs), backbone from ImageNet weights (torchvision).
#   python tools/train.py configs/ds2d2/oriented_rcnn_r101_dota.py
# Validation during training scores patches (mmrotate's DOTAMetric); tools/test.py scores whole
# val images: patch detections merged back (rotated NMS across patches), against the source label
# files in data/DOTA/val/labelTxt (DOTAWholeImageMetric).
_base_ = ['mmrotate::oriented_rcnn/oriented-rcnn-le90_r50_fpn_1x_dota.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
data_root = 'data/DOTA/split_1024/'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root, ann_file='val/annfiles/',
                                   data_prefix=dict(img_path='val/images/')))
test_dataloader = val_dataloader
test_evaluator = dict(_delete_=True, type='DOTAWholeImageMetric',
                      ann_dir='data/DOTA/val/labelTxt/', iou_thrs=[0.5])
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
