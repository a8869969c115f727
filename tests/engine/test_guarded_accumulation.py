"""Gradient accumulation with skipped (non-finite) steps in ``GuardedOptimWrapper``.

With ``accumulative_counts=N`` an optimizer step is taken at every N-th call of
``update_params``. A call whose loss is not finite still counts (the windows stay aligned with
the iterations) and drops the gradients gathered so far in its window; a window whose summed
gradients are not finite is skipped whole. The model is one linear map without bias and the loss
``sum(w . x)``, so each call's gradient is its input ``x`` exactly and every expected weight is
computed here by hand (lr 1, plain SGD: w <- w - sum(x_i / N) over the window's finite calls).
"""

from __future__ import annotations

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

import ds2d2_mm  # noqa: F401  (registers the guarded wrappers)

N = 3  # accumulative_counts


def setup(accumulate: int = N, max_skips: int = 10):
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    wrapper = build_optim_wrapper(model, dict(
        type="GuardedOptimWrapper", optimizer=dict(type="SGD", lr=1.0),
        accumulative_counts=accumulate, max_consecutive_skips=max_skips))
    steps = []
    step = wrapper.optimizer.step

    def counted(*args, **kwargs):
        steps.append(wrapper._inner_count)
        return step(*args, **kwargs)

    wrapper.optimizer.step = counted
    return model, wrapper, steps


def call(model, wrapper, x, nan_loss: bool = False) -> None:
    """One iteration: the loss sum(w . x) (times NaN for a non-finite one)."""
    loss = model(torch.tensor([x])).sum()
    wrapper.update_params(loss * float("nan") if nan_loss else loss)


def weight(model) -> list[float]:
    return model.weight.detach()[0].tolist()


def no_grad(model) -> bool:
    g = model.weight.grad
    return g is None or not g.abs().sum()


def test_a_skipped_call_counts_and_drops_its_window_so_far():
    MessageHub.get_current_instance().update_info("iter", 0)
    model, wrapper, steps = setup()
    # window 1: x1 good, x2 NaN (skipped), x3 good -> step with x3 / N alone
    call(model, wrapper, [3.0, 6.0])
    assert wrapper._inner_count == 1 and weight(model) == [1.0, -2.0]
    assert model.weight.grad.tolist() == [[1.0, 2.0]]  # x1 / N, waiting for the window
    call(model, wrapper, [30.0, 30.0], nan_loss=True)
    assert wrapper._inner_count == 2  # counted: the window still ends at call 3
    assert no_grad(model)  # x1's gradient is dropped with the skipped call
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (1, 1)
    assert weight(model) == [1.0, -2.0] and steps == []
    call(model, wrapper, [9.0, -3.0])
    assert steps == [3]  # the step after N calls
    assert weight(model) == [1.0 - 3.0, -2.0 + 1.0]  # w - x3 / N
    assert no_grad(model) and wrapper.consecutive_skips == 0
    # window 2: three good calls -> one step with (x4 + x5 + x6) / N
    for x in ([3.0, 0.0], [0.0, 3.0], [6.0, 6.0]):
        call(model, wrapper, x)
    assert steps == [3, 6]
    assert weight(model) == [-2.0 - 3.0, -1.0 - 3.0]
    assert wrapper._inner_count == 6 and wrapper.skipped_steps == 1


def test_a_skip_at_the_window_end_takes_no_step_and_the_next_window_starts_clean():
    MessageHub.get_current_instance().update_info("iter", 0)
    model, wrapper, steps = setup()
    call(model, wrapper, [3.0, 3.0])
    call(model, wrapper, [3.0, 3.0])
    call(model, wrapper, [3.0, 3.0], nan_loss=True)  # the N-th call: no step
    assert steps == [] and wrapper._inner_count == 3 and no_grad(model)
    assert weight(model) == [1.0, -2.0]
    for x in ([0.0, 3.0], [0.0, 3.0], [0.0, 3.0]):
        call(model, wrapper, x)
    assert steps == [6]
    assert weight(model) == [1.0, -2.0 - 3.0]  # window 1's gradients did not leak in


def test_non_finite_summed_gradients_skip_the_window_at_its_step():
    MessageHub.get_current_instance().update_info("iter", 0)
    model, wrapper, steps = setup()
    call(model, wrapper, [3.0, 3.0])
    handle = model.weight.register_hook(lambda g: torch.full_like(g, float("inf")))
    call(model, wrapper, [3.0, 3.0])  # finite loss, infinite gradient: seen at the window end
    handle.remove()
    assert wrapper.skipped_steps == 0 and wrapper._inner_count == 2
    call(model, wrapper, [3.0, 3.0])
    assert steps == [] and wrapper.skipped_steps == 1 and no_grad(model)
    assert weight(model) == [1.0, -2.0]
    for x in ([3.0, 0.0], [3.0, 0.0], [3.0, 0.0]):
        call(model, wrapper, x)
    assert steps == [6] and weight(model) == [1.0 - 3.0, -2.0]
    assert wrapper.consecutive_skips == 0


def test_skips_in_a_row_count_calls_not_windows():
    MessageHub.get_current_instance().update_info("iter", 5)
    model, wrapper, steps = setup(max_skips=4)
    for _ in range(3):
        call(model, wrapper, [1.0, 1.0], nan_loss=True)
    assert wrapper.consecutive_skips == 3 and wrapper._inner_count == 3 and steps == []
    with pytest.raises(FloatingPointError, match="4 optimizer steps in a row"):
        call(model, wrapper, [1.0, 1.0], nan_loss=True)
    assert wrapper._inner_count == 4


def test_without_accumulation_every_finite_call_steps():
    MessageHub.get_current_instance().update_info("iter", 0)
    model, wrapper, steps = setup(accumulate=1)
    call(model, wrapper, [1.0, 1.0])
    call(model, wrapper, [5.0, 5.0], nan_loss=True)
    call(model, wrapper, [1.0, 2.0])
    assert steps == [1, 3] and weight(model) == [1.0 - 2.0, -2.0 - 3.0]
