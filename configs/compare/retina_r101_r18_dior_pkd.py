# Comparison method PKD (Cao et al., "PKD: General Distillation Framework for Object Detectors
# via Pearson Correlation Coefficient", NeurIPS 2022): MSE between the per-channel standardised
# FPN maps of student and teacher (PKDLoss).
#   python tools/train.py configs/compare/retina_r101_r18_dior_pkd.py
# needs the teacher checkpoint of configs/ds2d2/retina_r101_dior.py (no amplifier stage).
#
# Published (the official implementation, MMRazor
# configs/distill/mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_coco.py): loss_weight 10 on the
# first four FPN levels (levels 0, 1, 2, 3).
# This project's choices: the DS2D2 DIOR setting of ../ds2d2/retina_r101_r18_dior.py (RetinaNet R101
# teacher -> R18 student, DIOR at 800 px) and its 24-epoch schedule (lr 0.005 at a total batch of
# 16, the distilled student's; the baseline on it: ../ds2d2/retina_r18_dior.py --cfg-options
# optim_wrapper.optimizer.lr=0.005, see README.md); PKD takes the explicit stream's place and the
# implicit stream (amplifiers) is off. Both FPNs have 256 channels, so there is no adapter (as
# published).
_base_ = ['../ds2d2/retina_r101_r18_dior.py']
model = dict(
    amplifier_config=None,
    amplifier_ckpt=None,
    distill_cfg=dict(
        explicit=dict(_delete_=True, type='PKDLoss', loss_weight=10.0, levels=(0, 1, 2, 3)),
        amplifiers=dict(full=0.0, high=0.0)))
