# Ablation of DS2D2 (RetinaNet R101 -> R18, DIOR): see README.md in this folder.
_base_ = ['../retina_r101_r18_dior.py']
# the full-frequency amplifier is not used; the high-frequency one (and its stage) is
model = dict(distill_cfg=dict(amplifiers=dict(full=0.0, high=1.0)))
