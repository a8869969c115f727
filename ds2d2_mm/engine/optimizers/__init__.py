"""Optimizer pieces: guarded wrappers that skip non-finite steps, and the layer-decay
constructor for ViT trunks."""

from .guarded_optim_wrapper import GUARDED, GuardedAmpOptimWrapper, GuardedOptimWrapper
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor, trunk_layer_id

__all__ = ["GUARDED", "GuardedAmpOptimWrapper", "GuardedOptimWrapper",
           "LayerDecayOptimWrapperConstructor", "trunk_layer_id"]
