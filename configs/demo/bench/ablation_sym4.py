# Comparison benchmark, ablation: Symlet-4 wavelet instead of Haar in the explicit stream.
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, sym4 wavelet', group='ablation', order=120)
model = dict(distill_cfg=dict(explicit=dict(decomposer='sym4')))
