# ATSS on DIOR, this project's extension of DS2D2. Stage 1, the teacher: mmdet's ATSS R101
# (atss_r101_fpn_1x_coco.py: torchvision ImageNet backbone, its 12-epoch SGD schedule at lr 0.01
# for a total batch of 16) with DIOR's data in COCO's place and 20 classes.
#   python tools/train.py configs/families/atss_r101_dior.py
_base_ = ['mmdet::atss/atss_r101_fpn_1x_coco.py', '../_base_/datasets/dior_in_family_configs.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=20))
train_dataloader = dict(dataset={{_base_.dior_train}})
val_dataloader = dict(dataset={{_base_.dior_test}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.dior_evaluator}}
test_evaluator = val_evaluator
