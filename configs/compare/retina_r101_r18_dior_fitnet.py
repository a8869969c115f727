# Comparison method FitNet (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015), in
# the form detection KD papers use as their feature-imitation baseline: a learnable 1x1 conv per
# FPN level maps the student's map to the teacher's, MSE to the teacher's map (FitNetLoss).
#   python tools/train.py configs/compare/retina_r101_r18_dior_fitnet.py
# needs the teacher checkpoint of configs/ds2d2/retina_r101_dior.py (no amplifier stage).
#
# Published (the RetinaNet FitNet baseline of LutingWang/HEAD,
# configs/_base_/models/fitnet_retina.py): a 1x1 conv on each of the 5 FPN levels, MSELoss
# weight 1.0.
# This project's choices: the DS2D2 DIOR setting of ../ds2d2/retina_r101_r18_dior.py (RetinaNet R101
# teacher -> R18 student, DIOR at 800 px) and its 24-epoch schedule (lr 0.005 at a total batch of
# 16, the distilled student's; the baseline on it: ../ds2d2/retina_r18_dior.py --cfg-options
# optim_wrapper.optimizer.lr=0.005, see README.md, no gradient clipping); FitNet's loss takes the
# explicit stream's place and the implicit stream (amplifiers) is off.
_base_ = ['../ds2d2/retina_r101_r18_dior.py']
model = dict(
    amplifier_config=None,
    amplifier_ckpt=None,
    distill_cfg=dict(
        explicit=dict(_delete_=True, type='FitNetLoss', loss_weight=1.0, levels=None),
        amplifiers=dict(full=0.0, high=0.0)))
