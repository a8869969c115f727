# Your own multi-band data, stage 1, the teacher: RetinaNet ResNet-101 FPN on a folder of TIFF /
# GeoTIFF rasters (multispectral, RGB+NIR, one-band SAR or thermal; any dtype) with COCO boxes,
# the published RetinaNet schedule (24 epochs, lr 0.005 at a total batch of 16), ImageNet weights
# with the stem inflated to the band count.
#
# EDIT THE FOUR SETTINGS BELOW (the students' configs inherit them), then:
#   python tools/data/band_stats.py <data_root>/annotations/train.json --root <data_root> \
#       --out <data_root>/band_stats.json             # add --nodata 0 if 0 marks missing data
#   python tools/pipeline.py --preset retina_coco_multiband       # all stages + report
# (or stage by stage: tools/train.py on this config, on retina_r101_hfamp_coco_multiband.py with
# model.teacher_ckpt=..., on retina_r18_coco_multiband.py, and on retina_r101_r18_coco_multiband.py
# with model.teacher_ckpt=... model.amplifier_ckpt=...).
# Layout: <data_root>/annotations/{train,val}.json, COCO, file_name relative to <data_root>.
data_root = 'data/multiband/'
bands = 4  # raster bands (every file must have this many: LoadMultiBandImage checks it)
classes = ('ship', 'vehicle')  # category names, in the json's category order
# ImageNet stem kernels per band: None spreads the RGB kernels over the bands (timm's rule);
# (2, 1, 0, None) says band 0 is blue, 1 green, 2 red, band 3 (NIR) gets the mean kernel
rgb_bands = None

# the DIOR dataset config gives the loaders' batch sizes, samplers and the COCO metric
_base_ = ['../_base_/retinanet_r101_recipe.py', '../_base_/datasets/dior_detection.py']
stats_file = data_root + 'band_stats.json'
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type='LoadMultiBandImage', expected_bands=bands),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadMultiBandImage', expected_bands=bands),
    dict(type='Resize', scale=(800, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root=data_root, metainfo=metainfo,
    ann_file='annotations/train.json', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root=data_root, metainfo=metainfo,
    ann_file='annotations/val.json', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
model = dict(
    data_preprocessor=dict(_delete_=True, type='MultiBandDetDataPreprocessor',
                           stats_file=stats_file, pad_size_divisor=32),
    backbone=dict(
        in_channels=bands,
        init_cfg=dict(_delete_=True, type='PretrainedInflated',
                      checkpoint='torchvision://resnet101', rgb_bands=rgb_bands)),
    bbox_head=dict(num_classes=len(classes)))
