# Comparison method: prediction mimicking (logit KD, Hinton et al., "Distilling the Knowledge in
# a Neural Network", 2015, applied to a dense detector's outputs), the baseline that CrossKD
# (Wang et al., CVPR 2024) compares its cross-head scheme with: the student's own head mimics
# the teacher's predictions on the same anchors (distill_cfg.implicit type 'PredictionKD').
#   python tools/train.py configs/compare/retina_r101_r18_dior_predkd.py
# needs the teacher checkpoint of configs/ds2d2/retina_r101_dior.py (no amplifier stage).
#
# Published: the regression term, GIoULoss loss_weight 1.0, is CrossKD's published RetinaNet
# loss_reg_kd (jbwang1997/CrossKD configs/crosskd/crosskd_r18_retinanet_r50_fpn_1x_coco.py).
# This project's choices: the classification term KDQualityFocalLoss with beta 0 (no quality
# modulation: plain sigmoid BCE against the teacher's probabilities, the classic form) and
# loss_weight 1.0; the implicit-stream weight 1.0; the DS2D2 DIOR setting of
# ../ds2d2/retina_r101_r18_dior.py (RetinaNet R101 teacher -> R18 student, DIOR at 800 px) and its
# 24-epoch schedule (lr 0.005 at a total batch of 16, the distilled student's; the baseline on it:
# ../ds2d2/retina_r18_dior.py --cfg-options optim_wrapper.optimizer.lr=0.005, see README.md); the
# explicit stream is dropped (explicit=None) and the amplifiers are off.
_base_ = ['../ds2d2/retina_r101_r18_dior.py']
model = dict(
    amplifier_config=None,
    amplifier_ckpt=None,
    distill_cfg=dict(
        explicit=None,
        amplifiers=dict(full=0.0, high=0.0),
        implicit=dict(type='PredictionKD', weight=1.0),
        kd_cls=dict(type='KDQualityFocalLoss', beta=0.0, loss_weight=1.0),
        kd_reg=dict(type='GIoULoss', loss_weight=1.0)))
