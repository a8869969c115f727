"""Optimizer wrappers that skip a step whose loss or gradients are not finite.

mmengine's wrappers step on whatever the loss gives: one NaN batch turns every weight into NaN and
the run goes on. :class:`GuardedOptimWrapper` (and :class:`GuardedAmpOptimWrapper` for AMP) checks
the total loss before the backward pass and the gradients after it; a non-finite one skips the
whole optimizer step (no momentum or weight-decay update either), counts it in the message hub
(``skipped_steps``, logged) and, after ``max_consecutive_skips`` skips in a row, stops the run
naming the last good checkpoint.

Under DDP every rank takes the same decision: the loss check is reduced over ranks (one
one-element all-reduce per step) and the gradients are already averaged when they are checked.
With AMP, overflowing gradients are the loss scaler's business (it skips and rescales), so only the
loss is checked.

Which terms were not finite is said by the model when it can: :class:`SpectralDistiller` names
its terms and the iteration in the message hub (``nonfinite_terms``) before the wrapper skips.
"""

from __future__ import annotations

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ...utils.hub_keys import SKIPPED_KEY, TERMS_KEY


def _hub() -> MessageHub:
    return MessageHub.get_current_instance()


def _all_finite(loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on every rank (one all-reduce when distributed)."""
    bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if get_world_size() > 1:
        all_reduce(bad, op="max")
    return not bool(bad.item())


def _grads_finite(params) -> bool:
    """Whether every gradient is finite (one host sync)."""
    flags = [torch.isfinite(p.grad).all() for p in params if p.grad is not None]
    return bool(torch.stack(flags).all()) if flags else True


class _GuardMixin:
    """The skip logic shared by the plain and the AMP wrapper."""

    check_grads = True

    def _init_guard(self, max_consecutive_skips: int) -> None:
        if max_consecutive_skips < 1:
            raise ValueError("max_consecutive_skips must be >= 1, got "
                             f"{max_consecutive_skips}")
        self.max_consecutive_skips = max_consecutive_skips
        self.consecutive_skips = 0
        self.skipped_steps = 0

    def _skip(self, what: str, zero_kwargs: dict) -> None:
        self.zero_grad(**zero_kwargs)
        self.skipped_steps += 1
        self.consecutive_skips += 1
        hub = _hub()
        it = hub.get_info("iter", None)
        terms = hub.get_info(TERMS_KEY, None) or what
        hub.update_scalar(f"train/{SKIPPED_KEY}", self.skipped_steps)
        hub.update_info(SKIPPED_KEY, self.skipped_steps)
        hub.update_info(TERMS_KEY, None)
        print_log(f"skipped the optimizer step of iteration {it}: {terms} "
                  f"({self.consecutive_skips} in a row, {self.skipped_steps} in all)",
                  logger="current", level=30)
        if self.consecutive_skips >= self.max_consecutive_skips:
            last = hub.get_info("last_ckpt", None) or "none saved yet"
            raise FloatingPointError(
                f"{self.consecutive_skips} optimizer steps in a row were skipped for non-finite "
                f"values (last: {terms}, iteration {it}); stopping. The last good checkpoint is "
                f"{last}: resume from it with a lower lr, gradient clipping or fp32, or "
                "raise max_consecutive_skips")

    def update_params(self, loss: torch.Tensor, step_kwargs: dict | None = None,
                      zero_kwargs: dict | None = None) -> None:
        """Backward and step as mmengine does, unless the loss or the gradients are not
        finite: then the step is skipped (see the module docstring)."""
        step_kwargs, zero_kwargs = step_kwargs or {}, zero_kwargs or {}
        if not _all_finite(loss):
            self._inner_count += 1  # keep gradient accumulation aligned
            return self._skip("non-finite loss", zero_kwargs)
        self.backward(self.scale_loss(loss))
        if not self.should_update():
            return None
        if self.check_grads:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            if not _grads_finite(params):
                return self._skip("non-finite gradients", zero_kwargs)
        self.step(**step_kwargs)
        self.zero_grad(**zero_kwargs)
        self.consecutive_skips = 0
        return None


@OPTIM_WRAPPERS.register_module()
class GuardedOptimWrapper(_GuardMixin, OptimWrapper):
    """``OptimWrapper`` that skips non-finite steps.

    Args:
        max_consecutive_skips: Skips in a row that stop the run.
        **kwargs: ``OptimWrapper``'s arguments.
    """

    def __init__(self, *args, max_consecutive_skips: int = 10, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_guard(max_consecutive_skips)


@OPTIM_WRAPPERS.register_module()
class GuardedAmpOptimWrapper(_GuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips steps with a non-finite loss (gradient overflow stays the
    loss scaler's business).

    Args:
        max_consecutive_skips: Skips in a row that stop the run.
        **kwargs: ``AmpOptimWrapper``'s arguments.
    """

    check_grads = False

    def __init__(self, *args, max_consecutive_skips: int = 10, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_guard(max_consecutive_skips)


#: The guarded counterpart of each mmengine wrapper type.
GUARDED = {"OptimWrapper": "GuardedOptimWrapper", "AmpOptimWrapper": "GuardedAmpOptimWrapper"}
