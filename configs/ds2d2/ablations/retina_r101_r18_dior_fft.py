# Ablation of DS2D2 (RetinaNet R101 -> R18, DIOR): see README.md in this folder.
_base_ = ['../retina_r101_r18_dior.py']
model = dict(distill_cfg=dict(explicit=dict(decomposer='fft')))
