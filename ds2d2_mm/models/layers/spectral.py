"""Spectral decompositions of feature maps: fast Haar DWT, any pywt basis, and an FFT split.

Every decomposer is an ``nn.Module`` whose ``forward(x)`` takes a feature map ``x`` of shape
``(N, C, H, W)`` and returns ``(low, high)``:

- ``low``: ``(N, C, h, w)``, the low-frequency band (structure),
- ``high``: ``(N, C, K, h, w)``, ``K`` high-frequency bands (edges, texture).

``HaarDWT`` (the default, ``K = 3``, half resolution) runs on strided slices and additions, with
a hand-written backward (the inverse transform, since the orthonormal Haar matrix is its own
inverse and transpose). It reproduces ``pytorch_wavelets.DWTForward(J=1, wave='haar',
mode='zero')`` exactly, band order and signs included, and is several times faster.

Haar band layout, for the 2x2 block ``[[a, b], [c, d]]`` at rows ``2i, 2i+1`` and columns
``2j, 2j+1`` of ``x`` (the ordering pytorch_wavelets uses)::

    low          = (a + b + c + d) / 2    LL
    high[:, :, 0] = (a + b - c - d) / 2    low-pass along W, high-pass along H
    high[:, :, 1] = (a - b + c - d) / 2    high-pass along W, low-pass along H
    high[:, :, 2] = (a - b - c + d) / 2    high-pass along both

An odd ``H`` or ``W`` is padded with one row or column of zeros at the end (bottom or right) first,
as ``pywt``'s ``'zero'`` mode does for a length-2 filter, so ``h = ceil(H / 2)``,
``w = ceil(W / 2)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

__all__ = [
    "DECOMPOSER_TYPES",
    "FFTSplit",
    "HaarDWT",
    "WaveletDWT",
    "build_decomposer",
    "haar_dwt",
    "haar_idwt",
    "high_frequency_from_bands",
    "high_frequency_map",
    "same_decomposition",
]

#: Interpolation weight that makes ``torch.lerp(a, b, w)`` the half-sum ``(a + b) / 2``. The 2D Haar
#: scale (1 / sqrt(2)) ** 2 = 1 / 2 is applied once, in the first butterfly, through it.
_HALF = 0.5
#: Number of Haar high-frequency bands (LH, HL, HH).
_NUM_HAAR_HIGH = 3
#: Nyquist frequency in cycles per sample; ``torch.fft.fftfreq`` returns values in [-0.5, 0.5).
_NYQUIST = 0.5
#: Padding modes of pytorch_wavelets' DWTForward.
_WAVELET_MODES = ("zero", "symmetric", "reflect", "periodization")


def _check_4d(x: Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(x.shape)}")


def _haar_forward(x: Tensor) -> tuple[Tensor, Tensor]:
    """Haar analysis without autograd. x: (N, C, H, W) -> (N, C, h, w), (N, C, 3, h, w)."""
    height, width = x.shape[-2:]
    pad_w, pad_h = width % 2, height % 2
    if pad_w or pad_h:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    n, c, h2, w2 = x.shape
    h, w = h2 // 2, w2 // 2
    # Butterfly along H with the 1/2 scale folded in: rows 2i (top) and 2i+1 (bottom). Splitting
    # a dimension is always a view, whatever the strides (unbind is cheaper than slicing).
    top, bottom = x.unflatten(2, (h, 2)).unbind(3)
    half_sum = torch.lerp(top, bottom, _HALF)  # (N, C, h, W'): (a + c) / 2 | (b + d) / 2
    half_diff = top - half_sum  # (N, C, h, W'): (a - c) / 2 | (b - d) / 2
    # Butterfly along W, written straight into the outputs.
    sum_even, sum_odd = half_sum.unflatten(3, (w, 2)).unbind(4)
    diff_even, diff_odd = half_diff.unflatten(3, (w, 2)).unbind(4)
    low = torch.add(sum_even, sum_odd)
    high = x.new_empty((n, c, _NUM_HAAR_HIGH, h, w))
    band_h, band_w, band_d = high.unbind(2)
    torch.add(diff_even, diff_odd, out=band_h)
    torch.sub(sum_even, sum_odd, out=band_w)
    torch.sub(diff_even, diff_odd, out=band_d)
    return low, high


def _haar_inverse(low: Tensor, high: Tensor) -> Tensor:
    """Haar synthesis without autograd. (N, C, h, w), (N, C, 3, h, w) -> (N, C, 2h, 2w)."""
    batch, chans, h, w = low.shape
    band_h, band_w, band_d = high.unbind(2)
    # a = P + Q, b = P - Q, c = R + S, d = R - S with the 1/2 scale folded into P, Q, R, S.
    p = torch.lerp(low, band_h, _HALF)  # (LL + H) / 2
    r = low - p  # (LL - H) / 2
    q = torch.lerp(band_w, band_d, _HALF)  # (W + D) / 2
    s = band_w - q  # (W - D) / 2
    out = low.new_empty((batch, chans, h, 2, w, 2))
    row_top, row_bottom = out.unbind(3)
    a, b = row_top.unbind(4)
    c, d = row_bottom.unbind(4)
    torch.add(p, q, out=a)
    torch.sub(p, q, out=b)
    torch.add(r, s, out=c)
    torch.sub(r, s, out=d)
    return out.view(batch, chans, 2 * h, 2 * w)


class _HaarDWTFunction(torch.autograd.Function):
    """Autograd wrapper: the gradient of the analysis is the synthesis of the band gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> tuple[Tensor, Tensor]:
        ctx.in_hw = tuple(x.shape[-2:])
        return _haar_forward(x)

    @staticmethod
    def backward(ctx: Any, grad_low: Tensor, grad_high: Tensor) -> Tensor:
        # Calls the differentiable inverse so that double backward works too.
        return haar_idwt(grad_low, grad_high, ctx.in_hw)


class _HaarIDWTFunction(torch.autograd.Function):
    """Autograd wrapper: the gradient of the synthesis is the analysis of the output gradient."""

    @staticmethod
    def forward(ctx: Any, low: Tensor, high: Tensor) -> Tensor:
        return _haar_inverse(low, high)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        return haar_dwt(grad_out)


def haar_dwt(x: Tensor) -> tuple[Tensor, Tensor]:
    """One-level 2D Haar DWT, equal to ``pytorch_wavelets.DWTForward(J=1, wave='haar')``.

    Matches the ``'zero'`` mode of pytorch_wavelets (``yl`` and ``yh[0]``) in values and
    gradients, for even and odd sizes; see the module docstring for the band layout. Keeps the
    input's dtype and device; supports double backward.

    Args:
        x: (N, C, H, W) input.

    Returns:
        ``low`` (N, C, h, w) and ``high`` (N, C, 3, h, w) with ``h = ceil(H / 2)`` and
        ``w = ceil(W / 2)``.
    """
    _check_4d(x, "haar_dwt input")
    return _HaarDWTFunction.apply(x)


def haar_idwt(low: Tensor, high: Tensor, out_hw: tuple[int, int] | None = None) -> Tensor:
    """Inverse of :func:`haar_dwt`: ``haar_idwt(*haar_dwt(x), x.shape[-2:]) == x``.

    Args:
        low: (N, C, h, w) low band.
        high: (N, C, 3, h, w) high bands, in :func:`haar_dwt`'s order.
        out_hw: (H, W) of the reconstruction, ``2h - 1 <= H <= 2h`` (likewise W); the padded last
            row / column is cropped for odd sizes. ``None`` means (2h, 2w).

    Returns:
        (N, C, H, W) reconstruction, in ``low``'s dtype.
    """
    _check_4d(low, "haar_idwt low")
    n, c, h, w = low.shape
    if tuple(high.shape) != (n, c, _NUM_HAAR_HIGH, h, w):
        raise ValueError(
            f"haar_idwt high must have shape (N, C, 3, h, w) = {(n, c, _NUM_HAAR_HIGH, h, w)} "
            f"to match low {tuple(low.shape)}, got {tuple(high.shape)}"
        )
    out = _HaarIDWTFunction.apply(low, high)
    if out_hw is None:
        return out
    out_h, out_w = (int(v) for v in out_hw)
    if not (2 * h - 1 <= out_h <= 2 * h and 2 * w - 1 <= out_w <= 2 * w):
        raise ValueError(
            f"haar_idwt out_hw={tuple(out_hw)} is not a size whose Haar bands are {h}x{w}; "
            f"expected H in [{2 * h - 1}, {2 * h}] and W in [{2 * w - 1}, {2 * w}]"
        )
    if (out_h, out_w) == (2 * h, 2 * w):
        return out
    return out[..., :out_h, :out_w]


@MODELS.register_module()
class HaarDWT(nn.Module):
    """One-level Haar DWT (fast path). (N, C, H, W) -> (N, C, h, w), (N, C, 3, h, w)."""

    num_high_bands = _NUM_HAAR_HIGH

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return haar_dwt(x)


@MODELS.register_module()
class WaveletDWT(nn.Module):
    """One-level DWT with any discrete pywt basis, through ``pytorch_wavelets.DWTForward``.

    Shapes: (N, C, H, W) -> ``low`` (N, C, h, w), ``high`` (N, C, 3, h, w), where ``h`` and ``w``
    follow ``pywt.dwt_coeff_len`` for the basis and ``mode`` (about half the input size).
    Half-precision inputs are transformed in fp32 and cast back to their dtype.

    Args:
        wave: a discrete wavelet name known to pywt, e.g. ``'db2'``, ``'sym4'``, ``'coif1'``.
        mode: boundary mode, one of ``'zero'``, ``'symmetric'``, ``'reflect'``,
            ``'periodization'``.
    """

    num_high_bands = _NUM_HAAR_HIGH

    def __init__(self, wave: str = "db2", mode: str = "zero") -> None:
        super().__init__()
        import pywt
        from pytorch_wavelets import DWTForward

        if wave not in pywt.wavelist(kind="discrete"):
            raise ValueError(
                f"WaveletDWT: unknown wavelet {wave!r}; use a discrete pywt wavelet such as "
                f"'haar', 'db2', 'sym4' (see pywt.wavelist(kind='discrete'))"
            )
        if mode not in _WAVELET_MODES:
            raise ValueError(f"WaveletDWT: unknown mode {mode!r}; choose one of {_WAVELET_MODES}")
        self.wave = wave
        self.mode = mode
        self.dwt = DWTForward(J=1, wave=wave, mode=mode)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_4d(x, "WaveletDWT input")
        filt_dtype = self.dwt.h0_col.dtype
        low, highs = self.dwt(x.to(filt_dtype))
        return low.to(x.dtype), highs[0].to(x.dtype)

    def extra_repr(self) -> str:
        return f"wave={self.wave!r}, mode={self.mode!r}"


@MODELS.register_module()
class FFTSplit(nn.Module):
    """Low/high split by a centred circular low-pass mask in the 2D FFT domain.

    With ``fy = torch.fft.fftfreq(H)`` and ``fx = torch.fft.fftfreq(W)`` (cycles per sample, in
    [-0.5, 0.5), 0.5 being the Nyquist frequency), a frequency is kept in the low band when
    ``sqrt(fy ** 2 + fx ** 2) <= cutoff * 0.5``, i.e. the mask is the disc of radius
    ``cutoff`` times the Nyquist radius centred on the zero frequency (the DC term is always
    kept; ``cutoff >= sqrt(2)`` keeps everything). Then ``low = real(ifft2(mask * fft2(x)))``
    (computed with ``rfft2`` / ``irfft2``, which gives the same result because the mask is
    symmetric) and ``high = x - low``. Computed in fp32 (autocast off), returned in ``x``'s
    dtype.

    Shapes: (N, C, H, W) -> ``low`` (N, C, H, W), ``high`` (N, C, 1, H, W).

    Args:
        cutoff: radius of the pass band as a fraction of the Nyquist frequency, > 0.
    """

    num_high_bands = 1

    def __init__(self, cutoff: float = 0.25) -> None:
        super().__init__()
        if not (isinstance(cutoff, (int, float)) and cutoff > 0 and math.isfinite(cutoff)):
            raise ValueError(f"FFTSplit: cutoff must be a positive number, got {cutoff!r}")
        self.cutoff = float(cutoff)

    def low_pass_mask(self, height: int, width: int, device: torch.device) -> Tensor:
        """Mask over the ``rfft2`` spectrum: (H, W // 2 + 1) float32, 1 where kept."""
        fy = torch.fft.fftfreq(height, device=device, dtype=torch.float32)
        fx = torch.fft.rfftfreq(width, device=device, dtype=torch.float32)
        radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
        return (radius <= self.cutoff * _NYQUIST).to(torch.float32)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_4d(x, "FFTSplit input")
        height, width = x.shape[-2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            spectrum = torch.fft.rfft2(xf)
            mask = self.low_pass_mask(height, width, x.device)
            low = torch.fft.irfft2(spectrum * mask, s=(height, width))
            high = xf - low
        return low.to(x.dtype), high.unsqueeze(2).to(x.dtype)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}"


#: Registered decomposer types and the short aliases accepted by :func:`build_decomposer`.
DECOMPOSER_TYPES: dict[str, str] = {
    "HaarDWT": "HaarDWT",
    "WaveletDWT": "WaveletDWT",
    "FFTSplit": "FFTSplit",
    "haar": "HaarDWT",
    "dwt": "WaveletDWT",
    "fft": "FFTSplit",
}


def _discrete_wavelets() -> list[str]:
    import pywt

    return pywt.wavelist(kind="discrete")


def build_decomposer(cfg: dict | str | nn.Module | None) -> nn.Module:
    """Builds a decomposer from a name or a config.

    Args:
        cfg: ``None`` or ``'haar'`` -> :class:`HaarDWT`; ``'fft'`` -> :class:`FFTSplit`;
            another discrete pywt wavelet name (``'db2'``, ``'sym4'``, ...) ->
            :class:`WaveletDWT` with that basis; a dict ``dict(type=..., **kwargs)`` with ``type``
            one of ``HaarDWT``, ``WaveletDWT``, ``FFTSplit`` or the aliases ``haar``, ``dwt``,
            ``fft``, built through ``mmdet.registry.MODELS``; an ``nn.Module`` is returned as is.

    Raises:
        ValueError: for an unknown name or ``type``, naming it and listing the choices.
    """
    if cfg is None:
        return HaarDWT()
    if isinstance(cfg, nn.Module):
        return cfg
    if isinstance(cfg, str):
        if cfg in DECOMPOSER_TYPES:
            return MODELS.build({"type": DECOMPOSER_TYPES[cfg]})
        if cfg in _discrete_wavelets():
            return WaveletDWT(wave=cfg)
        raise ValueError(
            f"Unknown decomposer {cfg!r}: choose one of {sorted(DECOMPOSER_TYPES)} or a discrete "
            f"pywt wavelet name such as 'db2' or 'sym4' (see pywt.wavelist(kind='discrete'))"
        )
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        type_name = cfg.get("type")
        if type_name not in DECOMPOSER_TYPES:
            raise ValueError(
                f"Unknown decomposer type {type_name!r} in {cfg!r}: choose one of "
                f"{sorted(DECOMPOSER_TYPES)}"
            )
        cfg["type"] = DECOMPOSER_TYPES[type_name]
        return MODELS.build(cfg)
    raise ValueError(
        f"Decomposer config must be None, a name, a dict or an nn.Module, got {type(cfg).__name__}"
    )


def high_frequency_map(x: Tensor, decomposer: nn.Module) -> Tensor:
    """Sum of the high bands, resized back to the input grid: the high-frequency amplifier input.

    Args:
        x: (N, C, H, W) feature map.
        decomposer: a module returning ``(low, high)`` with ``high`` (N, C, K, h, w).

    Returns:
        (N, C, H, W): ``high.sum(2)``, bilinearly upsampled (``align_corners=False``) when
        ``(h, w) != (H, W)``.
    """
    _check_4d(x, "high_frequency_map input")
    _, high = decomposer(x)
    return high_frequency_from_bands(high, tuple(x.shape[-2:]))


def high_frequency_from_bands(high: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`high_frequency_map` from bands already computed (``decomposer(x)[1]``).

    Args:
        high: (N, C, K, h, w) high bands of a map ``x`` of spatial size ``size``.
        size: (H, W) of ``x``.

    Returns:
        (N, C, H, W): ``high.sum(2)``, bilinearly upsampled to ``size`` where it differs.
    """
    hf = high.sum(dim=2)
    if tuple(hf.shape[-2:]) != tuple(size):
        hf = F.interpolate(hf, size=size, mode="bilinear", align_corners=False)
    return hf


def same_decomposition(a: nn.Module | None, b: nn.Module | None) -> bool:
    """Whether two decomposers give the same bands of the same map: the same class and
    settings, without parameters (a learnable decomposer is never taken for another)."""
    if a is None or b is None or type(a) is not type(b):
        return False
    if any(True for _ in a.parameters()) or any(True for _ in b.parameters()):
        return False
    return a.extra_repr() == b.extra_repr()
