"""Functional cores and small layers: wavelet / FFT decompositions (``HaarDWT``, ``WaveletDWT``,
``FFTSplit`` in ``MODELS``), DISW weight maps, and the SAM3 trunk's spectral adapter."""

from .disw import boxes_to_disw_input, disw_pyramid, disw_weights, disw_weights_rotated
from .spectral import (
    FFTSplit,
    HaarDWT,
    WaveletDWT,
    build_decomposer,
    haar_dwt,
    haar_idwt,
    high_frequency_map,
)
from .spectral_adapter import SpectralAdapter

__all__ = [
    "FFTSplit",
    "HaarDWT",
    "SpectralAdapter",
    "WaveletDWT",
    "boxes_to_disw_input",
    "build_decomposer",
    "disw_pyramid",
    "disw_weights",
    "disw_weights_rotated",
    "haar_dwt",
    "haar_idwt",
    "high_frequency_map",
]
