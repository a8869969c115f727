"""The base of detectors that wrap an inner detector and hold frozen parts outside registration.

MMDetection's ``KnowledgeDistillationSingleStageDetector`` keeps its teacher out of
``nn.Module`` registration so that the teacher stays out of ``state_dict``, ``parameters()`` (so
out of the optimizer and DDP) and is forced to eval mode in ``train()``. Every distiller here does
the same with other parts (a teacher and amplifier heads, an original trunk), so the mechanics
live once, in :class:`FrozenPartsDetector`:

- :meth:`~FrozenPartsDetector.hide` sets an attribute ``nn.Module`` does not register;
- :meth:`~FrozenPartsDetector.hidden_modules` lists the hidden modules; device and dtype moves
  (``to``, ``cuda``, ``half``) reach them, and ``train()`` leaves them (and any registered module
  of :meth:`~FrozenPartsDetector.frozen_modules`) in eval mode;
- ``extract_feat``, ``predict`` and ``_forward`` are the :attr:`~FrozenPartsDetector.inner`
  detector's, on what it reads of a batch (:meth:`~FrozenPartsDetector.inner_inputs`), so the
  wrapper predicts and exports as the detector it trains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmdet.models.detectors import BaseDetector
from mmdet.structures import SampleList
from torch import Tensor, nn

__all__ = ["FrozenPartsDetector"]


class FrozenPartsDetector(BaseDetector):
    """A detector that trains :attr:`inner` and holds frozen parts outside registration."""

    def hide(self, name: str, value: object) -> None:
        """Set ``self.<name>`` without ``nn.Module`` registering it (no params, no state_dict)."""
        object.__setattr__(self, name, value)

    @property
    def inner(self) -> BaseDetector:
        """The detector this model trains and predicts with."""
        raise NotImplementedError

    def inner_inputs(self, batch_inputs: Tensor) -> Tensor:
        """What :attr:`inner` reads of a batch ``(N, C, H, W)`` (default: all of it)."""
        return batch_inputs

    def hidden_modules(self) -> list[nn.Module]:
        """The unregistered modules: moved with the model, always in eval mode."""
        return []

    def frozen_modules(self) -> list[nn.Module]:
        """Every module kept in eval mode by ``train()``: the hidden ones, and registered frozen
        parts a subclass adds."""
        return self.hidden_modules()

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> FrozenPartsDetector:
        """Device and dtype moves (``to``, ``cuda``, ...) reach the hidden modules too."""
        for module in self.hidden_modules():
            module._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> FrozenPartsDetector:
        """The trained parts follow ``mode``; the frozen ones stay in eval mode."""
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    # -- the detector API of the inner detector ----------------------------------------------
    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        """The inner detector's features (e.g. FPN levels, each (N, C, H_l, W_l))."""
        return self.inner.extract_feat(self.inner_inputs(batch_inputs))

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """The inner detector's predictions."""
        return self.inner.predict(self.inner_inputs(batch_inputs), batch_data_samples,
                                  rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList | None = None):
        """The inner detector's raw head outputs."""
        return self.inner._forward(self.inner_inputs(batch_inputs), batch_data_samples)
