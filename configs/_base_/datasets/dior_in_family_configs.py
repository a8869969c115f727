# DIOR in the place of COCO in a detector family's own mmdet config (its pipelines, loaders and
# schedule kept): the family configs of configs/families/ take these as
#   train_dataloader = dict(dataset={{_base_.dior_train}}), val_/test_dataloader with dior_test,
#   val_/test_evaluator = {{_base_.dior_evaluator}}.
# Variables, not loaders: the family's config defines the loaders, and two bases may not define
# the same key. Values as configs/_base_/datasets/dior_detection.py (tools/data/dior_to_coco.py).
dior_root = 'data/DIOR/'
dior_train = dict(type='DIORDataset', data_root=dior_root, ann_file='annotations/trainval.json',
                  data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=True, min_size=32))
dior_test = dict(type='DIORDataset', data_root=dior_root, ann_file='annotations/test.json',
                 data_prefix=dict(img=''), test_mode=True)
dior_evaluator = dict(type='CocoMetric', ann_file=dior_root + 'annotations/test.json',
                      metric='bbox', format_only=False)
