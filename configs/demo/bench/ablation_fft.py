# Comparison benchmark, ablation: the explicit stream splits bands with the FFT instead of Haar.
_base_ = ['./ds2d2.py']
model = dict(distill_cfg=dict(explicit=dict(decomposer='fft')))
