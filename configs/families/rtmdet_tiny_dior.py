# RTMDet on DIOR (this project's extension): the student baseline, mmdet's RTMDet-tiny
# (rtmdet_tiny_8xb32-300e_coco.py: its pipelines, schedule and ImageNet CSPNeXt weights) alone.
#   python tools/train.py configs/families/rtmdet_tiny_dior.py
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
          '../_base_/datasets/dior_in_family_configs.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=20))
train_dataloader = dict(dataset={{_base_.dior_train}})
val_dataloader = dict(dataset={{_base_.dior_test}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.dior_evaluator}}
test_evaluator = val_evaluator
