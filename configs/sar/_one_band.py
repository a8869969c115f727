# One-band SAR inputs for mmrotate's SAR ship configs (this project's extension; shared by
# oriented_rcnn_r101_ssdd.py and oriented_rcnn_r101_hrsid.py through {{_base_.one_band_*}}).
#
# Why one band: SSDD and HRSID ship their SAR amplitudes as 8-bit JPEG files (mmrotate reads
# them as 3-channel BGR), and a SAR image has one band: a 3-channel copy of it carries the same
# values three times (not checked on the real files here: this machine has no copy of SSDD or
# HRSID). The loader asks OpenCV for grey (color_type='grayscale'), which returns that band
# exactly when the three channels are equal, and a true 1-channel JPEG as it is; the model reads
# one band (in_channels=1), so the same model also takes a float or 16-bit SAR raster through
# LoadMultiBandImage (configs/multiband/) without a change.
# ImageNet weights for one band: PretrainedInflated sums the RGB stem kernels (timm's rule for
# C = 1), so a grey image normalised by the channel average of ImageNet's mean and std gives
# nearly the RGB model's activations on that image replicated in three channels (exactly, if the
# three channel means and stds were equal: they differ by up to 20 and 1.3 levels). To normalise
# by your data's own statistics, write them with `ds2d2-band-stats` (TIFF rasters) and set
# `model.data_preprocessor = dict(type='MultiBandDetDataPreprocessor', stats_file=...)`.
one_band_loader = dict(type='mmdet.LoadImageFromFile', color_type='grayscale',
                       backend_args=None)
# (123.675 + 116.28 + 103.53) / 3 and (58.395 + 57.12 + 57.375) / 3: ImageNet's channel averages
one_band_preprocessor = dict(
    _delete_=True, type='MultiBandDetDataPreprocessor', mean=[114.495], std=[57.63],
    pad_size_divisor=32, boxtype2tensor=False)
# the teachers' backbone (the R18 students change depth and checkpoint)
one_band_r101 = dict(
    depth=101,
    in_channels=1,
    init_cfg=dict(_delete_=True, type='PretrainedInflated',
                  checkpoint='torchvision://resnet101'))
