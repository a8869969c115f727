"""Tests of ds2d2_mm.models.layers.spectral: the Haar fast path against pytorch_wavelets, other
decomposers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from pytorch_wavelets import DWTForward

from ds2d2_mm.models.layers.spectral import (
    FFTSplit,
    HaarDWT,
    WaveletDWT,
    build_decomposer,
    haar_dwt,
    haar_idwt,
    high_frequency_map,
)

SHAPES = [(2, 3, 8, 8), (1, 2, 7, 9), (2, 4, 6, 5), (1, 1, 1, 1), (3, 2, 16, 11), (1, 5, 13, 13)]
ATOL = 1e-5
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _reference_haar(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dwt = DWTForward(J=1, wave="haar", mode="zero").to(device=x.device, dtype=x.dtype)
    low, highs = dwt(x)
    return low, highs[0]


@pytest.mark.parametrize("shape", SHAPES)
def test_haar_matches_pytorch_wavelets_values_and_gradients(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    low, high = haar_dwt(x)
    ref_low, ref_high = _reference_haar(x)
    assert low.shape == ref_low.shape and high.shape == ref_high.shape
    torch.testing.assert_close(low, ref_low, atol=ATOL, rtol=0)
    torch.testing.assert_close(high, ref_high, atol=ATOL, rtol=0)

    grad_low, grad_high = torch.randn_like(low), torch.randn_like(high)
    (grad,) = torch.autograd.grad((low * grad_low).sum() + (high * grad_high).sum(), x)
    (ref_grad,) = torch.autograd.grad((ref_low * grad_low).sum() + (ref_high * grad_high).sum(), x)
    torch.testing.assert_close(grad, ref_grad, atol=ATOL, rtol=0)


def test_haar_band_layout_by_hand():
    # One 2x2 block [[a, b], [c, d]] = [[1, 2], [3, 4]].
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    low, high = haar_dwt(x)
    assert low.flatten().tolist() == [5.0]  # (a + b + c + d) / 2
    assert high.flatten().tolist() == [-2.0, -1.0, 0.0]  # (a+b-c-d)/2, (a-b+c-d)/2, (a-b-c+d)/2


def test_haar_odd_size_pads_zeros_at_the_end():
    # A 1x3 row [1, 2, 3] is padded to [[1, 2, 3, 0], [0, 0, 0, 0]].
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    low, high = haar_dwt(x)
    assert low.flatten().tolist() == [1.5, 1.5]
    assert high[0, 0, :, 0, :].tolist() == [[1.5, 1.5], [-0.5, 1.5], [-0.5, 1.5]]


def test_haar_non_contiguous_input():
    torch.manual_seed(1)
    base = torch.randn(2, 9, 6, 3)
    x = base.permute(0, 3, 2, 1)  # (2, 3, 6, 9), not contiguous
    low, high = haar_dwt(x)
    ref_low, ref_high = _reference_haar(x.contiguous())
    torch.testing.assert_close(low, ref_low, atol=ATOL, rtol=0)
    torch.testing.assert_close(high, ref_high, atol=ATOL, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_haar_idwt_inverts_dwt(shape):
    torch.manual_seed(2)
    x = torch.randn(shape, dtype=torch.float64)
    low, high = haar_dwt(x)
    torch.testing.assert_close(haar_idwt(low, high, shape[-2:]), x, atol=1e-12, rtol=0)
    full = haar_idwt(low, high)
    assert full.shape[-2:] == (2 * low.shape[-2], 2 * low.shape[-1])
    torch.testing.assert_close(full[..., : shape[2], : shape[3]], x, atol=1e-12, rtol=0)


def test_haar_dwt_inverts_idwt():
    torch.manual_seed(3)
    low, high = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 3, 4, 5)
    low2, high2 = haar_dwt(haar_idwt(low, high))
    torch.testing.assert_close(low2, low, atol=ATOL, rtol=0)
    torch.testing.assert_close(high2, high, atol=ATOL, rtol=0)


def test_haar_gradcheck_and_double_backward():
    torch.manual_seed(4)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(haar_dwt, (x,))
    assert torch.autograd.gradgradcheck(haar_dwt, (x,))
    low = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    high = torch.randn(1, 2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: haar_idwt(a, b, (5, 3)), (low, high))


def test_haar_idwt_rejects_bad_shapes():
    low, high = torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3, 3)
    with pytest.raises(ValueError, match="out_hw"):
        haar_idwt(low, high, (4, 6))
    with pytest.raises(ValueError, match="high"):
        haar_idwt(low, torch.zeros(1, 2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        haar_dwt(torch.zeros(2, 4, 4))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_haar_keeps_half_dtypes(dtype):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 9, 8)
    low, high = haar_dwt(x.to(dtype))
    assert low.dtype == dtype and high.dtype == dtype
    ref_low, ref_high = haar_dwt(x)
    tol = 5e-2 if dtype == torch.bfloat16 else 5e-3
    torch.testing.assert_close(low.float(), ref_low, atol=tol, rtol=tol)
    torch.testing.assert_close(high.float(), ref_high, atol=tol, rtol=tol)


@CUDA
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_haar_cuda_matches_cpu(dtype):
    torch.manual_seed(6)
    x = torch.randn(2, 8, 17, 12, dtype=dtype)
    xc = x.cuda().requires_grad_()
    low, high = haar_dwt(xc)
    assert low.is_cuda and low.dtype == dtype
    ref_low, ref_high = _reference_haar(x.float())
    tol = 5e-2 if dtype != torch.float32 else ATOL
    torch.testing.assert_close(low.float().cpu(), ref_low, atol=tol, rtol=tol)
    torch.testing.assert_close(high.float().cpu(), ref_high, atol=tol, rtol=tol)
    (low.sum() + high.square().sum()).backward()
    assert xc.grad is not None and xc.grad.shape == x.shape


@pytest.mark.parametrize(
    ("wave", "mode"), [("db2", "zero"), ("sym4", "symmetric"), ("haar", "zero")]
)
def test_wavelet_dwt_matches_pytorch_wavelets(wave, mode):
    torch.manual_seed(7)
    x = torch.randn(2, 3, 15, 12)
    low, high = WaveletDWT(wave=wave, mode=mode)(x)
    ref_low, ref_highs = DWTForward(J=1, wave=wave, mode=mode)(x)
    assert high.dim() == 5 and high.shape[2] == 3
    torch.testing.assert_close(low, ref_low)
    torch.testing.assert_close(high, ref_highs[0])


def test_wavelet_dwt_filters_are_buffers_and_half_input():
    module = WaveletDWT("db2")
    assert any(name.startswith("dwt.") for name, _ in module.named_buffers())
    x = torch.randn(1, 2, 8, 8)
    low, high = module(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16 and high.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="nope"):
        WaveletDWT("nope")


def _fft_low_pass_centred(x: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Full fft2 with a centred (fftshift) mask: the definition FFTSplit documents."""
    height, width = x.shape[-2:]
    fy = torch.fft.fftshift(torch.fft.fftfreq(height))
    fx = torch.fft.fftshift(torch.fft.fftfreq(width))
    mask = (torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) <= cutoff * 0.5).to(torch.complex64)
    spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum * mask, dim=(-2, -1))).real


@pytest.mark.parametrize(("size", "cutoff"), [((16, 16), 0.25), ((15, 22), 0.4), ((9, 7), 0.7)])
def test_fft_split_definition_and_reconstruction(size, cutoff):
    torch.manual_seed(8)
    x = torch.randn(2, 3, *size)
    low, high = FFTSplit(cutoff)(x)
    assert low.shape == x.shape and high.shape == (2, 3, 1, *size)
    torch.testing.assert_close(low + high[:, :, 0], x, atol=ATOL, rtol=0)
    torch.testing.assert_close(low, _fft_low_pass_centred(x, cutoff), atol=ATOL, rtol=0)
    assert high.abs().max() > 0.1  # random noise has high frequencies


def test_fft_split_constant_is_all_low_and_tiny_cutoff_keeps_the_mean():
    x = torch.full((1, 2, 10, 12), 3.0)
    low, high = FFTSplit(0.25)(x)
    torch.testing.assert_close(low, x, atol=ATOL, rtol=0)
    assert high.abs().max() < ATOL
    torch.manual_seed(9)
    y = torch.randn(1, 2, 10, 12)
    low, _ = FFTSplit(1e-3)(y)
    torch.testing.assert_close(low, y.mean((-2, -1), keepdim=True).expand_as(y), atol=ATOL, rtol=0)


def test_fft_split_half_input_and_bad_cutoff():
    low, high = FFTSplit()(torch.randn(1, 2, 8, 8, dtype=torch.float16))
    assert low.dtype == torch.float16 and high.dtype == torch.float16
    with pytest.raises(ValueError, match="cutoff"):
        FFTSplit(0.0)


@pytest.mark.parametrize("decomposer", [HaarDWT(), WaveletDWT("db2"), FFTSplit()])
@pytest.mark.parametrize("size", [(12, 12), (13, 7)])
def test_high_frequency_map_shape_and_value(decomposer, size):
    torch.manual_seed(10)
    x = torch.randn(2, 4, *size)
    hf = high_frequency_map(x, decomposer)
    assert hf.shape == x.shape
    _, high = decomposer(x)
    expected = high.sum(2)
    if expected.shape[-2:] != x.shape[-2:]:
        expected = F.interpolate(expected, size=size, mode="bilinear", align_corners=False)
    torch.testing.assert_close(hf, expected)


def test_build_decomposer_names_and_configs():
    assert type(build_decomposer(None)) is HaarDWT
    assert type(build_decomposer("haar")) is HaarDWT
    db2 = build_decomposer("db2")
    assert type(db2) is WaveletDWT and db2.wave == "db2"
    assert build_decomposer("sym4").wave == "sym4"
    assert type(build_decomposer("fft")) is FFTSplit
    assert build_decomposer({"type": "fft", "cutoff": 0.1}).cutoff == 0.1
    assert build_decomposer({"type": "FFTSplit", "cutoff": 0.3}).cutoff == 0.3
    coif = build_decomposer({"type": "dwt", "wave": "coif1"})
    assert type(coif) is WaveletDWT and coif.wave == "coif1"
    assert type(build_decomposer({"type": "HaarDWT"})) is HaarDWT
    assert type(build_decomposer({"type": "haar"})) is HaarDWT
    assert MODELS.get("WaveletDWT") is WaveletDWT


def test_build_decomposer_unknown_names_raise():
    with pytest.raises(ValueError, match=r"'wavelet9'.*HaarDWT"):
        build_decomposer("wavelet9")
    with pytest.raises(ValueError, match=r"'Nope'.*FFTSplit"):
        build_decomposer({"type": "Nope"})
    with pytest.raises(ValueError, match="None"):
        build_decomposer({"cutoff": 0.2})
