"""Hooks: ``SafeCheckpointHook`` (atomic saves, no non-finite weights saved) and
``ProgressiveUnfreezeHook`` (train different parts in consecutive stages)."""

from .progressive_unfreeze_hook import ProgressiveUnfreezeHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ["ProgressiveUnfreezeHook", "SafeCheckpointHook"]
