# Ablation of DS2D2 (RetinaNet R101 -> R18, DIOR): see README.md in this folder.
_base_ = ['../retina_r101_r18_dior.py']
# the high-frequency amplifier is not used: no amplifier stage is needed
model = dict(amplifier_config=None, amplifier_ckpt=None, distill_cfg=dict(amplifiers=dict(full=1.0, high=0.0)))
