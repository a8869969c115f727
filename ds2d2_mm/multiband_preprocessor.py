"""``MultiBandDetDataPreprocessor``: mmdet's ``DetDataPreprocessor`` for images of any band count.

mmengine's ``ImgDataPreprocessor`` (the base of mmdet's) asserts that ``mean`` and ``std`` have 1
or 3 values, so a 4- or 13-band model cannot normalise per band with it. This subclass accepts C
values (or the JSON of ``ds2d2-band-stats`` as ``stats_file``) and otherwise behaves exactly like
``DetDataPreprocessor``: ``(x - mean) / std`` per band on ``(C, H, W)`` inputs, padding, batch
augments. A channel swap (``bgr_to_rgb`` / ``rgb_to_bgr``) only exists for 3 bands; an input whose
band count differs from ``mean``'s is an error naming both counts.

Example::

    data_preprocessor=dict(type='MultiBandDetDataPreprocessor',
                           stats_file='data/s2/band_stats.json', pad_size_divisor=32)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

from .datasets.band_statistics import read_band_stats
from .errors import ConfigError

__all__ = ["MultiBandDetDataPreprocessor"]

#: Band counts that mmengine's ImgDataPreprocessor normalises itself.
_MMENGINE_COUNTS = (1, 3)


@MODELS.register_module()
class MultiBandDetDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` with per-band ``mean`` / ``std`` of any length C.

    Args:
        mean: C per-band means (in the loaded image's units), or ``None``.
        std: C per-band standard deviations, or ``None``.
        stats_file: A ``ds2d2-band-stats`` JSON file instead of ``mean`` and ``std``.
        bgr_to_rgb: Swap channels 0 and 2 (3-band inputs only).
        rgb_to_bgr: Same swap (3-band inputs only).
        **kwargs: The other ``DetDataPreprocessor`` arguments (``pad_size_divisor``, ...).
    """

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 stats_file: str | os.PathLike | None = None, bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False, **kwargs) -> None:
        if stats_file is not None:
            if mean is not None or std is not None:
                raise ConfigError("MultiBandDetDataPreprocessor: give stats_file or mean/std, "
                                  "not both")
            mean, std = read_band_stats(stats_file)
        if (mean is None) != (std is None):
            raise ConfigError("MultiBandDetDataPreprocessor: mean and std go together")
        if mean is not None and len(mean) != len(std):
            raise ConfigError(f"MultiBandDetDataPreprocessor: mean has {len(mean)} values and "
                              f"std {len(std)}")
        if (bgr_to_rgb or rgb_to_bgr) and (mean is None or len(mean) != 3):
            raise ConfigError("MultiBandDetDataPreprocessor: bgr_to_rgb / rgb_to_bgr swap "
                              "channels 0 and 2 of 3-band images only; set them False")
        native = mean is None or len(mean) in _MMENGINE_COUNTS
        super().__init__(mean=mean if native else None, std=std if native else None,
                         bgr_to_rgb=bgr_to_rgb, rgb_to_bgr=rgb_to_bgr, **kwargs)
        if not native:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                                 False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                                 False)
            self._enable_normalize = True
        self.num_bands = None if mean is None else len(mean)

    def forward(self, data: dict, training: bool = False) -> dict:
        """``DetDataPreprocessor.forward`` after checking each input's band count.

        ``data['inputs']``: a list of ``(C, H, W)`` tensors or an ``(N, C, H, W)`` tensor.
        """
        if self.num_bands is not None and self.num_bands > 1:
            inputs = data["inputs"]
            counts = {int(x.shape[-3]) for x in inputs} if isinstance(inputs, (list, tuple)) \
                else {int(inputs.shape[1])}
            if counts != {self.num_bands}:
                raise ConfigError(
                    f"MultiBandDetDataPreprocessor: images with {sorted(counts)} bands, but "
                    f"mean/std have {self.num_bands} values; check LoadMultiBandImage's bands "
                    "and the band statistics")
        return super().forward(data, training)
