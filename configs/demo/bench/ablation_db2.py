# Comparison benchmark, ablation: Daubechies-2 wavelet instead of Haar in the explicit stream.
_base_ = ['./ds2d2.py']
bench_row = dict(name='DS2D2, db2 wavelet', group='ablation', order=110)
model = dict(distill_cfg=dict(explicit=dict(decomposer='db2')))
