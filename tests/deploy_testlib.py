"""Tiny detectors for the deployment tests, settled so that their detections are distinct.

A random-init detector in eval mode has batch-norm statistics (0, 1) that do not fit its
activations, and a classification bias that makes every score equal: its detections after NMS
are ties, which no two backends order alike. :func:`settle` gives it the statistics of a few
inputs and a classification layer with spread scores, as a trained model has.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _cls_layers(model: nn.Module) -> list[nn.Module]:
    names = ("retina_cls", "conv_cls", "atss_cls", "fc_cls", "rpn_cls")
    layers = []
    for name, mod in model.named_modules():
        parts = name.split(".")
        if parts[-1] in names or (len(parts) > 1 and parts[-2] == "rtm_cls"):
            layers.append(mod)
    return layers


@torch.no_grad()
def settle(model: nn.Module, size: int = 64, seed: int = 0) -> nn.Module:
    """Batch-norm statistics of random inputs and spread classification weights; eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = None  # cumulative average
            mod.reset_running_stats()
    model.train()
    for _ in range(3):
        feats = model.extract_feat(torch.randn(2, 3, size, size, generator=gen))
        for head in ("bbox_head", "rpn_head"):
            if hasattr(model, head):
                getattr(model, head)(feats)
    model.eval()
    for layer in _cls_layers(model):
        for param in layer.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.2)
            else:
                param.fill_(-1.0)
    return model
