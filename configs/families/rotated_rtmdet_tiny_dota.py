# RTMDet-R on DOTA, this project's extension of DS2D2 (the paper distils horizontal boxes only).
# The student baseline: mmrotate's RTMDet-R-tiny (rotated_rtmdet_tiny-3x-dota.py: its
# 1024 px pipelines, 36-epoch AdamW schedule and ImageNet CSPNeXt weights) on DOTA v1.0 split by
# tools/data/split_dota.py into data/DOTA/split_1024/{trainval,val}.
#   python tools/train.py configs/families/rotated_rtmdet_tiny_dota.py
_base_ = ['mmrotate::rotated_rtmdet/rotated_rtmdet_tiny-3x-dota.py',
          '../_base_/datasets/dota_in_family_configs.py']
custom_imports = dict(imports=['ds2d2_mm'], allow_failed_imports=False)
train_dataloader = dict(dataset={{_base_.dota_train}})
val_dataloader = dict(dataset={{_base_.dota_val}})
test_dataloader = val_dataloader
test_evaluator = {{_base_.dota_whole_image_metric}}
