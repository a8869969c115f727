"""Detectors of this project beyond the distillers: SAM3's full image model prompted with class
names (``Sam3PromptedDetector``, :mod:`.sam3_prompted`; importing it does not import sam3)."""

from .sam3_prompted import Sam3PromptedDetector

__all__ = ["Sam3PromptedDetector"]
