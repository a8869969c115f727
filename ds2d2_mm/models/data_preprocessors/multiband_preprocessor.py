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

Paired modalities (``LoadPairedImages`` stacks them along channels) are normalised each with its
own statistics, concatenated in the loader's order; ``modality_channels`` tells the layout, and a
3-channel modality may swap BGR to RGB on its own::

    data_preprocessor=dict(type='MultiBandDetDataPreprocessor', pad_size_divisor=32,
                           modalities=dict(
                               rgb=dict(mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
                               ir=dict(stats_file='data/ir_band_stats.json')))

The layout is checked against the ``modality_channels`` that ``LoadPairedImages`` records in each
sample's metainfo (when ``PackDetInputs`` keeps it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

from ...datasets.band_statistics import read_band_stats
from ...utils.errors import ConfigError

__all__ = ["MultiBandDetDataPreprocessor", "modality_stats"]

#: Band counts that mmengine's ImgDataPreprocessor normalises itself.
_MMENGINE_COUNTS = (1, 3)


#: Keys of one modality's normalisation dict.
_MODALITY_KEYS = ("mean", "std", "stats_file", "bgr_to_rgb")


def _mean_std(where: str, mean, std, stats_file) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` from explicit lists or a ``ds2d2-band-stats`` file (``None``: neither)."""
    if stats_file is not None:
        if mean is not None or std is not None:
            raise ConfigError(f"{where}: give stats_file or mean/std, not both")
        mean, std = read_band_stats(stats_file)
    if (mean is None) != (std is None):
        raise ConfigError(f"{where}: mean and std go together")
    if mean is None:
        return None
    if len(mean) != len(std):
        raise ConfigError(f"{where}: mean has {len(mean)} values and std {len(std)}")
    return [float(v) for v in mean], [float(v) for v in std]


def modality_stats(modalities: Mapping[str, Mapping]) -> tuple[
        list[float], list[float], dict[str, tuple[int, int]], list[int]]:
    """Concatenated ``(mean, std)``, the channel layout ``{name: (start, end)}`` and the channel
    permutation (BGR to RGB inside the modalities that ask for it) of per-modality settings.

    Args:
        modalities: Ordered ``{name: dict(mean=..., std=... | stats_file=..., bgr_to_rgb=...)}``.
    """
    if not isinstance(modalities, Mapping) or not modalities:
        raise ConfigError("MultiBandDetDataPreprocessor: modalities must be a non-empty dict "
                          f"{{name: dict(mean=..., std=...)}}, got {modalities!r}")
    mean: list[float] = []
    std: list[float] = []
    layout: dict[str, tuple[int, int]] = {}
    order: list[int] = []
    for name, cfg in modalities.items():
        where = f"MultiBandDetDataPreprocessor: modalities.{name}"
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where} must be a dict(mean=..., std=...) or "
                              f"dict(stats_file=...), got {cfg!r}")
        unknown = sorted(set(cfg) - set(_MODALITY_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {list(_MODALITY_KEYS)}")
        stats = _mean_std(where, cfg.get("mean"), cfg.get("std"), cfg.get("stats_file"))
        if stats is None:
            raise ConfigError(f"{where} needs mean/std or stats_file")
        start = len(mean)
        mean += stats[0]
        std += stats[1]
        layout[name] = (start, len(mean))
        channels = list(range(start, len(mean)))
        if cfg.get("bgr_to_rgb", False):
            if len(channels) != 3:
                raise ConfigError(f"{where}: bgr_to_rgb swaps the channels of a 3-channel "
                                  f"modality, this one has {len(channels)}")
            channels.reverse()
        order += channels
    return mean, std, layout, order


@MODELS.register_module()
class MultiBandDetDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` with per-band ``mean`` / ``std`` of any length C.

    Args:
        mean: C per-band means (in the loaded image's units), or ``None``.
        std: C per-band standard deviations, or ``None``.
        stats_file: A ``ds2d2-band-stats`` JSON file instead of ``mean`` and ``std``.
        modalities: Paired inputs instead of the three above: ordered ``{name: dict(mean=...,
            std=...)}`` (or ``dict(stats_file=...)``, and ``bgr_to_rgb=True`` for a 3-channel
            modality loaded as BGR), in ``LoadPairedImages``' order.
        bgr_to_rgb: Swap channels 0 and 2 (3-band inputs only).
        rgb_to_bgr: Same swap (3-band inputs only).
        **kwargs: The other ``DetDataPreprocessor`` arguments (``pad_size_divisor``, ...).

    Attributes:
        modality_channels: ``{name: (start, end)}`` of the paired layout, or ``None``.
    """

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 stats_file: str | os.PathLike | None = None,
                 modalities: Mapping[str, Mapping] | None = None, bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False, **kwargs) -> None:
        layout: dict[str, tuple[int, int]] | None = None
        order = None
        if modalities is not None:
            if mean is not None or std is not None or stats_file is not None:
                raise ConfigError("MultiBandDetDataPreprocessor: give modalities or "
                                  "mean/std/stats_file, not both")
            if bgr_to_rgb or rgb_to_bgr:
                raise ConfigError("MultiBandDetDataPreprocessor: with modalities, set "
                                  "bgr_to_rgb inside the modality that needs it, e.g. "
                                  "modalities=dict(rgb=dict(..., bgr_to_rgb=True), ...)")
            mean, std, layout, order = modality_stats(modalities)
        else:
            stats = _mean_std("MultiBandDetDataPreprocessor", mean, std, stats_file)
            mean, std = stats if stats is not None else (None, None)
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
        self.modality_channels = layout
        self._order = None if order is None or order == sorted(order) else order

    def check_layout(self, data_samples) -> None:
        """Each sample's ``modality_channels`` (recorded by ``LoadPairedImages``) must be this
        preprocessor's layout."""
        if self.modality_channels is None or not data_samples:
            return
        ours = {k: tuple(v) for k, v in self.modality_channels.items()}
        for sample in data_samples:
            theirs = sample.metainfo.get("modality_channels")
            if theirs is None:
                continue
            theirs = {k: tuple(int(i) for i in v) for k, v in theirs.items()}
            if theirs != ours:
                raise ConfigError(
                    f"MultiBandDetDataPreprocessor: the loader stacked the modalities as {theirs} "
                    f"({sample.metainfo.get('img_path', '?')}) but modalities= normalises them "
                    f"as {ours}; give both the same modalities in the same order")

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
        self.check_layout(data.get("data_samples"))
        if self._order is not None:  # BGR to RGB inside the modalities that ask for it
            inputs = data["inputs"]
            data = dict(data, inputs=[x[self._order] for x in inputs]
                        if isinstance(inputs, (list, tuple)) else inputs[:, self._order])
        return super().forward(data, training)
