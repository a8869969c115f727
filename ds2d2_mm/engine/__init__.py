"""Training engine pieces: hooks (atomic checkpoints, progressive unfreezing) and optimizer
pieces (wrappers that skip non-finite steps, layer-wise lr decay for a ViT trunk). They register
in mmengine's root registries (``HOOKS``, ``OPTIM_WRAPPERS``, ``OPTIM_WRAPPER_CONSTRUCTORS``)."""

from .hooks import ProgressiveUnfreezeHook, SafeCheckpointHook
from .optimizers import (
    GUARDED,
    GuardedAmpOptimWrapper,
    GuardedOptimWrapper,
    LayerDecayOptimWrapperConstructor,
)

__all__ = ["GUARDED", "GuardedAmpOptimWrapper", "GuardedOptimWrapper",
           "LayerDecayOptimWrapperConstructor", "ProgressiveUnfreezeHook", "SafeCheckpointHook"]
