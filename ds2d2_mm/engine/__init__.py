"""Training engine pieces that make long runs safe: atomic checkpoints, optimizer wrappers that
skip non-finite steps."""

from .checkpoint_hook import SafeCheckpointHook
from .optim_wrapper import GUARDED, GuardedAmpOptimWrapper, GuardedOptimWrapper

__all__ = ["GUARDED", "GuardedAmpOptimWrapper", "GuardedOptimWrapper", "SafeCheckpointHook"]
