# DOTA v1.0 split into 1024 px patches by tools/data/split_dota.py, in the place of mmrotate's
# split_ss_dota in a detector family's own mmrotate config (its pipelines, loaders and schedule
# kept), as configs/ds2d2/rotated_retina_r101_dota.py sets it: training on trainval patches,
# validation on val patches, tools/test.py on whole val images (patch detections merged back,
# DOTAWholeImageMetric). Variables, not loaders (two bases may not define the same key).
dota_root = 'data/DOTA/split_1024/'
dota_train = dict(data_root=dota_root)
dota_val = dict(data_root=dota_root, ann_file='val/annfiles/',
                data_prefix=dict(img_path='val/images/'))
dota_whole_image_metric = dict(_delete_=True, type='DOTAWholeImageMetric',
                               ann_dir='data/DOTA/val/labelTxt/', iou_thrs=[0.5])
