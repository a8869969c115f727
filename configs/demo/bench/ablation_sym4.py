# Comparison benchmark, ablation: Symlet-4 wavelet instead of Haar in the explicit stream.
_base_ = ['./ds2d2.py']
model = dict(distill_cfg=dict(explicit=dict(decomposer='sym4')))
