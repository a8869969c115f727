"""Stem inflation: start a C-band backbone from RGB (ImageNet) weights.

:func:`inflate_stem` turns a stem convolution weight ``(O, 3, k, k)`` into ``(O, C, k, k)``;
``PretrainedInflated`` (an mmengine weight initializer) loads a checkpoint and inflates its stem
on the way, so a config only changes the backbone's ``in_channels`` and ``init_cfg``::

    backbone=dict(type='ResNet', depth=18, in_channels=4,
                  init_cfg=dict(type='PretrainedInflated', checkpoint='torchvision://resnet18',
                                rgb_bands=(2, 1, 0, None)))   # B, G, R, NIR

The rule
--------
Without ``rgb_bands`` it is timm's ``adapt_input_conv``
(``timm/models/_manipulate.py``, timm 1.0.31, the same rule since timm 0.4): C = 3 unchanged;
C = 1 the sum of the three RGB kernels; any other C the RGB kernels repeated cyclically
(R, G, B, R, G, ...) and all scaled by ``3 / C``.

With ``rgb_bands`` (one entry per input band: 0, 1 or 2 for the R, G or B kernel of the
checkpoint, ``None`` for a band without an RGB counterpart), band b gets

    W'[:, b] = s * W[:, rgb_bands[b]]          if rgb_bands[b] is not None
    W'[:, b] = s * mean(W[:, 0], W[:, 1], W[:, 2])   otherwise

with ``s = 3 / C`` (``rescale=True``, default; timm's factor) or ``s = 1`` (``rescale=False``).

Properties (convolution is linear; ``conv_W(x)`` is the stem without bias):

* ``rescale=True``: when every RGB kernel is named by the same number of bands (each once, as in
  an RGB+NIR image; or none), ``sum_b W'[:, b] = sum_c W[:, c]``: an input whose C bands all
  equal one image ``x`` gives exactly the RGB stem's output on ``(x, x, x)``. Inputs of equal
  statistics across bands therefore keep the activation scale the checkpoint was trained with.
  Otherwise (e.g. colour infrared NIR, R, G) it holds approximately.
* ``rescale=False``: the RGB kernels are kept exactly, so an input whose unmapped bands are 0
  (i.e. at their dataset mean after normalisation) gives exactly the RGB stem's output on its
  R, G, B bands; with ``rescale=True`` that output is ``3 / C`` times the RGB one.
* ``rgb_bands=(0, 1, 2)`` with C = 3 returns the weight unchanged (either setting).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import Tensor, nn

from ...utils.errors import ConfigError

__all__ = ["PretrainedInflated", "inflate_stem"]

#: Input channels of an RGB checkpoint's stem.
RGB = 3


def _check_rgb_bands(rgb_bands: Sequence[int | None], num_bands: int) -> list[int | None]:
    bands = [None if b is None else int(b) for b in rgb_bands]
    if len(bands) != num_bands:
        raise ConfigError(f"rgb_bands has {len(bands)} entries but the model has {num_bands} "
                          "input bands (one entry per band: 0/1/2 for R/G/B, None otherwise)")
    bad = [b for b in bands if b is not None and not 0 <= b < RGB]
    if bad:
        raise ConfigError(f"rgb_bands entries must be 0, 1, 2 (R, G, B) or None, got {bad}")
    return bands


def inflate_stem(weight: Tensor, rgb_bands: Sequence[int | None] | None = None,
                 num_bands: int | None = None, rescale: bool = True) -> Tensor:
    """Inflate an RGB stem weight ``(O, 3, k, k)`` to ``(O, C, k, k)`` (rule: module docstring).

    Args:
        weight: The checkpoint's stem convolution weight ``(O, 3, kh, kw)``.
        rgb_bands: Per input band, the RGB kernel index it takes (0, 1, 2) or ``None`` (the
            mean kernel); ``None`` for timm's cyclic rule.
        num_bands: C; defaults to ``len(rgb_bands)``.
        rescale: Scale by ``3 / C`` (with ``rgb_bands``; timm's rule always scales).

    Returns:
        ``(O, C, kh, kw)`` in ``weight``'s dtype (computed in float32, or float64 for float64
        weights).
    """
    if weight.ndim != 4 or weight.shape[1] != RGB:
        raise ConfigError(f"inflate_stem needs an RGB conv weight (O, 3, k, k), got "
                          f"{tuple(weight.shape)}")
    if num_bands is None:
        if rgb_bands is None:
            raise ConfigError("inflate_stem: give num_bands or rgb_bands")
        num_bands = len(rgb_bands)
    if num_bands < 1:
        raise ConfigError(f"inflate_stem: num_bands={num_bands} must be >= 1")
    w = weight.to(torch.promote_types(weight.dtype, torch.float32))  # float64 stays float64
    if rgb_bands is None:  # timm's adapt_input_conv
        if num_bands == RGB:
            return weight.clone()
        if num_bands == 1:
            return w.sum(dim=1, keepdim=True).to(weight.dtype)
        repeats = -(-num_bands // RGB)
        out = w.repeat(1, repeats, 1, 1)[:, :num_bands] * (RGB / num_bands)
        return out.to(weight.dtype)
    bands = _check_rgb_bands(rgb_bands, num_bands)
    mean = w.mean(dim=1)
    out = torch.stack([mean if b is None else w[:, b] for b in bands], dim=1)
    if rescale:
        out = out * (RGB / num_bands)
    return out.to(weight.dtype)


def _state_dict_of(checkpoint: dict) -> dict:
    """The weights of a loaded checkpoint (mmengine's ``state_dict`` key or the dict itself),
    without DataParallel's ``module.`` prefix."""
    state = checkpoint.get("state_dict", checkpoint)
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}


@WEIGHT_INITIALIZERS.register_module(name="PretrainedInflated")
class PretrainedInflated:
    """Load a checkpoint like mmengine's ``Pretrained`` and inflate its stem to the module's bands.

    The stem weight ``stem_key`` of the checkpoint (after ``prefix`` is stripped) is passed
    through :func:`inflate_stem` when its input channels differ from the module's; the rest
    loads as with ``Pretrained`` (``strict=False``). An initializer of another type than
    ``Pretrained`` runs before the module's children initialise themselves: use it on backbones
    whose blocks have no ``init_cfg`` of their own once an ``init_cfg`` is given (mmdet's
    ResNet, ResNeXt, ResNetV1d, RegNet).

    Args:
        checkpoint: Path, URL or ``torchvision://`` / ``open-mmlab://`` name.
        prefix: Sub-module prefix in the checkpoint (e.g. ``'backbone.'``), or ``None``.
        map_location: Where tensors are loaded.
        stem_key: The stem convolution's weight in the module's state dict
            (mmdet ResNet: ``conv1.weight``; with ``deep_stem``: ``stem.0.weight``).
        rgb_bands: See :func:`inflate_stem` (``None``: timm's cyclic rule).
        rescale: See :func:`inflate_stem`.
    """

    def __init__(self, checkpoint: str, prefix: str | None = None, map_location: str = "cpu",
                 stem_key: str = "conv1.weight",
                 rgb_bands: Sequence[int | None] | None = None, rescale: bool = True) -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        self.stem_key = stem_key
        self.rgb_bands = None if rgb_bands is None else list(rgb_bands)
        self.rescale = rescale

    def load(self) -> dict[str, Tensor]:
        """The checkpoint's state dict (``prefix`` stripped)."""
        from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix

        if self.prefix is not None:
            return _load_checkpoint_with_prefix(self.prefix, self.checkpoint,
                                                map_location=self.map_location)
        return _state_dict_of(_load_checkpoint(self.checkpoint, map_location=self.map_location))

    def inflated(self, state: dict[str, Tensor], module: nn.Module) -> dict[str, Tensor]:
        """``state`` with its stem weight fitted to ``module``'s input bands."""
        own = module.state_dict()
        if self.stem_key not in own:
            convs = [k for k, v in own.items() if k.endswith("weight") and v.ndim == 4][:3]
            raise ConfigError(f"PretrainedInflated: the module has no {self.stem_key!r} "
                              f"(stem_key); its first conv weights are {convs}")
        if self.stem_key not in state:
            raise ConfigError(f"PretrainedInflated: checkpoint {self.checkpoint!r} has no "
                              f"{self.stem_key!r} (prefix={self.prefix!r})")
        src, dst = state[self.stem_key], own[self.stem_key]
        if src.shape[1] == dst.shape[1]:
            return state
        if src.shape[1] != RGB or src.shape[0] != dst.shape[0] or src.shape[2:] != dst.shape[2:]:
            raise ConfigError(f"PretrainedInflated: {self.stem_key} of {self.checkpoint!r} is "
                              f"{tuple(src.shape)}, the module's {tuple(dst.shape)}; only the "
                              "input channels of an RGB stem can be inflated")
        state = dict(state)
        state[self.stem_key] = inflate_stem(src, self.rgb_bands, dst.shape[1], self.rescale)
        print_log(f"PretrainedInflated: {self.stem_key} inflated from 3 to {dst.shape[1]} "
                  f"bands (rgb_bands={self.rgb_bands}, rescale={self.rescale})",
                  logger="current")
        return state

    def __call__(self, module: nn.Module) -> None:
        from mmengine.runner.checkpoint import load_state_dict

        print_log(f"load {self.prefix or 'model'} from {self.checkpoint} (stem inflated)",
                  logger="current")
        load_state_dict(module, self.inflated(self.load(), module), strict=False,
                        logger="current")
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f"{type(self).__name__}: load from {self.checkpoint}"
