# Comparison method FGD (Yang et al., "Focal and Global Knowledge Distillation for Detectors",
# CVPR 2022): focal (foreground / background, attention-weighted), attention and global
# (GcBlock) feature terms on every FPN level (FGDLoss).
#   python tools/train.py configs/compare/retina_r101_r18_dior_fgd.py
# needs the teacher checkpoint of configs/ds2d2/retina_r101_dior.py (no amplifier stage).
#
# Published (the official RetinaNet config of yzd-v/FGD,
# configs/distillers/fgd/fgd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py): temp 0.5,
# alpha_fgd 1e-3, beta_fgd 5e-4, gamma_fgd 5e-4, lambda_fgd 5e-6, all 5 FPN levels.
# This project's choices: the DS2D2 DIOR setting of ../ds2d2/retina_r101_r18_dior.py (RetinaNet R101
# teacher -> R18 student, DIOR at 800 px) and its 24-epoch schedule (lr 0.005 at a total batch of
# 16, the distilled student's; the baseline on it: ../ds2d2/retina_r18_dior.py --cfg-options
# optim_wrapper.optimizer.lr=0.005, see README.md; the official FGD runs use lr 0.01 and gradient
# clipping at 35, left out here so every method trains alike); the official runs also start the
# student's neck and head from the teacher's (init_student=True), here the student starts from
# ImageNet weights as the baseline does; FGD takes the explicit stream's place and the implicit
# stream (amplifiers) is off.
_base_ = ['../ds2d2/retina_r101_r18_dior.py']
model = dict(
    amplifier_config=None,
    amplifier_ckpt=None,
    distill_cfg=dict(
        explicit=dict(_delete_=True, type='FGDLoss', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                      gamma_fgd=5e-4, lambda_fgd=5e-6, levels=None),
        amplifiers=dict(full=0.0, high=0.0)))
