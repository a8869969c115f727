# RTMDet-tiny at the demo's scale (this project's extension: a detector family of its own in the
# comparison benchmark): the architecture of mmdet's rtmdet/rtmdet_tiny_8xb32-300e_coco.py
# (CSPNeXt P5 with deepen 0.167 / widen 0.375, CSPNeXtPAFPN of 96 channels, the separate-BN head
# with shared convs, point priors at strides 8/16/32, the dynamic soft-label assigner, QFL and
# GIoU), written out because the demo's data and schedule come from another base. It differs
# from mmdet's model in what tests/configs/test_family_configs.py lists: 4 classes, BN instead
# of SyncBN (one CPU process), random init (no ImageNet weights offline), the demo's test_cfg.
# A variable of its own name, not `model`: the bench rows take it over the baseline's model.
rtmdet_tiny = dict(
    type='RTMDet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[57.375, 57.12, 58.395], bgr_to_rgb=False, batch_augments=None),
    backbone=dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167,
                  widen_factor=0.375, channel_attention=True, norm_cfg=dict(type='BN'),
                  act_cfg=dict(type='SiLU', inplace=True), init_cfg=None),
    neck=dict(type='CSPNeXtPAFPN', in_channels=[96, 192, 384], out_channels=96,
              num_csp_blocks=1, expand_ratio=0.5, norm_cfg=dict(type='BN'),
              act_cfg=dict(type='SiLU', inplace=True)),
    bbox_head=dict(
        type='RTMDetSepBNHead', num_classes=4, in_channels=96, stacked_convs=2,
        feat_channels=96,
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0), with_objectness=False,
        exp_on_reg=False, share_conv=True, pred_kernel_size=1, norm_cfg=dict(type='BN'),
        act_cfg=dict(type='SiLU', inplace=True)),
    train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13), allowed_border=-1,
                   pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
