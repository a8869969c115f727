"""Running sam3 0.1.4's image model and losses on the CPU.

Two places of sam3 assume a GPU:

- its geometry encoder pins a small host tensor before every box pooling
  (``scale.pin_memory()`` in ``SequenceGeometryEncoder._encode_boxes``), which it runs even for
  an empty box prompt; without a CUDA driver ``pin_memory`` raises. Pinning is only a transfer
  hint for a GPU, so where there is none ``Tensor.pin_memory`` returns the tensor itself;
- its focal losses (``sam3.train.loss.loss_fns.sigmoid_focal_loss``, used by the presence and
  mask terms) run Triton kernels by default, which need CUDA tensors. For CPU tensors the same
  function's own PyTorch path (``triton=False``) computes the same formula: the kernels'
  element-wise loss, and its sum for the reducing kernel.

:func:`sam3_cpu_compat` applies both for the duration of a block, only where needed: on a CUDA
device nothing changes. :func:`sam3_inference_on` is its inference half (no loss patches, so
sam3's training losses and their ``torchmetrics`` import are not needed to predict).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ...backbones.sam3_import import import_sam3

__all__ = ["sam3_cpu_compat", "sam3_inference_on"]


def _torch_focal(loss_fns: Any, reduce: bool) -> Any:
    """sam3's own PyTorch focal loss with the signature of its Triton autograd functions."""

    def focal(inputs: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2) -> Tensor:
        loss = loss_fns.sigmoid_focal_loss(
            inputs, targets, 1, alpha=alpha, gamma=gamma, reduce=False, triton=False
        )
        return loss.sum() if reduce else loss

    return focal


@contextlib.contextmanager
def sam3_inference_on(device: torch.device | str) -> Iterator[None]:
    """Within the block, sam3's image inference runs on ``device`` even when that is the CPU.

    Without a CUDA driver ``Tensor.pin_memory()`` is the identity (sam3's geometry encoder pins
    a host tensor before every box pooling, also for an empty box prompt; pinning is only a
    transfer hint). On a CUDA device, or where CUDA is available, nothing changes.
    """
    if torch.device(device).type != "cpu" or torch.cuda.is_available():
        yield
        return
    pin_memory = torch.Tensor.pin_memory

    def passthrough(self: Tensor, *args: object, **kwargs: object) -> Tensor:
        return self

    torch.Tensor.pin_memory = passthrough  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.pin_memory = pin_memory  # type: ignore[method-assign]


@contextlib.contextmanager
def sam3_cpu_compat(device: torch.device | str = "cpu") -> Iterator[None]:
    """Within the block, sam3 runs and trains on ``device`` even when that is the CPU.

    Args:
        device: Where the model and the loss inputs are. ``cpu`` routes sam3's focal losses to
            their PyTorch path; without CUDA, ``Tensor.pin_memory()`` is also the identity
            (:func:`sam3_inference_on`).
    """
    if torch.device(device).type != "cpu":
        yield
        return
    loss_fns = import_sam3("sam3.train.loss.loss_fns")
    saved = {
        "triton_sigmoid_focal_loss": loss_fns.triton_sigmoid_focal_loss,
        "triton_sigmoid_focal_loss_reduce": loss_fns.triton_sigmoid_focal_loss_reduce,
    }
    loss_fns.triton_sigmoid_focal_loss = _torch_focal(loss_fns, reduce=False)
    loss_fns.triton_sigmoid_focal_loss_reduce = _torch_focal(loss_fns, reduce=True)
    try:
        with sam3_inference_on(device):
            yield
    finally:
        for name, value in saved.items():
            setattr(loss_fns, name, value)
