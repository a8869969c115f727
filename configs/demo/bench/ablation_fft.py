# Comparison benchmark, ablation: the explicit stream splits bands with the FFT instead of Haar.
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, FFT bands', group='ablation', order=100)
model = dict(distill_cfg=dict(explicit=dict(decomposer='fft')))
