# RTMDet on DIOR, this project's extension of DS2D2 (the paper distils RetinaNet and Faster R-CNN).
# Stage 1, the teacher: mmdet's RTMDet-l (rtmdet_l_8xb32-300e_coco.py: its pipelines, 300-epoch
# AdamW schedule with EMA and the pipeline switch, at a total batch of 256) on DIOR's 20 classes.
#   python tools/train.py configs/families/rtmdet_l_dior.py
_base_ = ['mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py',
          '../_base_/datasets/dior_in_family_configs.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=20))
train_dataloader = dict(dataset={{_base_.dior_train}})
val_dataloader = dict(dataset={{_base_.dior_test}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.dior_evaluator}}
test_evaluator = val_evaluator
