"""Data preprocessors: ``MultiBandDetDataPreprocessor`` (C-band and paired-modality inputs)."""

from .multiband_preprocessor import MultiBandDetDataPreprocessor

__all__ = ["MultiBandDetDataPreprocessor"]
