"""Training hooks: progressive unfreezing in stages.

``ProgressiveUnfreezeHook`` switches which parameters train, and at which learning-rate scale, at
configured epochs or iterations. The SAM3 recipe (``configs/sam3/retina_sam3_dior.py``):

    stage 1: adapter + last N trunk blocks + pyramid + neck + head   (lr x 1)
    stage 2: the head alone, to adapt it to the spectral features    (lr x 0.1)
    stage 3: everything of stage 1 again, jointly                     (lr x 1)

    custom_hooks = [dict(type='ProgressiveUnfreezeHook', by_epoch=True, stages=[
        dict(begin=0, trainable=['backbone', 'neck', 'bbox_head']),
        dict(begin=16, trainable=['bbox_head'], lr_mult=0.1),
        dict(begin=20, trainable=['backbone', 'neck', 'bbox_head']),
    ])]

How a stage is applied:

- The parameters that may train at all are those that require gradients when training starts
  (the model's own freeze policy, e.g. the SAM3 backbone's last-N-blocks rule). A stage never
  trains anything outside that set, except trunk blocks it unfreezes explicitly with
  ``num_trainable_blocks`` (which calls ``backbone.set_num_trainable_blocks``).
- Of those, a parameter trains in a stage when its name (in the unwrapped model, e.g.
  ``bbox_head.retina_cls.weight``) starts with one of the stage's ``trainable`` prefixes
  (``None``: all of them). The others get ``requires_grad=False`` and their ``.grad`` dropped.
  ``model.train()`` is then called again, so parts left without trainable parameters switch to
  eval mode (the SAM3 trunk's frozen blocks: no drop path).
- During each iteration of the stage, every optimizer param group is scaled by ``lr_mult`` if it
  holds a trainable parameter and by 0 otherwise; the scheduled values are put back after the
  iteration, before the parameter schedulers step (this hook's priority, NORMAL, runs before
  ``ParamSchedulerHook``'s LOW), so any scheduler composes with the stages. The scaled values are
  what the logger shows. Optimizers with one group per layer / module (such as
  ``LayerDecayOptimWrapperConstructor``'s) make the zero scale exact per module.

Distributed training: parameters that stop requiring gradients after DDP has wrapped the model
need ``find_unused_parameters=True`` in the config; the zero lr above keeps them fixed even when
DDP hands them zero gradients. Parameters that were frozen when DDP wrapped the model are not
synchronised by it, so unfreezing trunk blocks beyond the initial policy in a later stage is only
safe on one GPU (the hook warns).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

__all__ = ["ProgressiveUnfreezeHook"]

_STAGE_KEYS = {"begin", "trainable", "lr_mult", "num_trainable_blocks"}


def _matches(name: str, prefixes: Sequence[str]) -> bool:
    """Whether parameter ``name`` lies under one of the dotted module ``prefixes``."""
    return any(name == p or name.startswith(p.rstrip(".") + ".") for p in prefixes)


def _check_stages(stages: Sequence[dict]) -> list[dict]:
    """Validated copies of the stage dicts, with defaults filled in."""
    if not stages:
        raise ValueError("ProgressiveUnfreezeHook needs at least one stage")
    out = []
    for i, stage in enumerate(stages):
        unknown = set(stage) - _STAGE_KEYS
        if unknown or "begin" not in stage:
            raise ValueError(
                f"ProgressiveUnfreezeHook stage {i} {dict(stage)}: needs 'begin' and accepts only "
                f"{sorted(_STAGE_KEYS)} (unknown: {sorted(unknown)})"
            )
        trainable = stage.get("trainable")
        if isinstance(trainable, str):
            trainable = [trainable]
        lr_mult = float(stage.get("lr_mult", 1.0))
        if lr_mult < 0:
            raise ValueError(f"ProgressiveUnfreezeHook stage {i}: lr_mult must be >= 0")
        out.append(
            dict(
                begin=int(stage["begin"]),
                trainable=None if trainable is None else tuple(trainable),
                lr_mult=lr_mult,
                num_trainable_blocks=stage.get("num_trainable_blocks"),
            )
        )
    begins = [s["begin"] for s in out]
    if begins != sorted(set(begins)) or begins[0] < 0:
        raise ValueError(
            f"ProgressiveUnfreezeHook stage begins must be >= 0 and increasing: {begins}"
        )
    return out


@HOOKS.register_module()
class ProgressiveUnfreezeHook(Hook):
    """Train different parts of the model, at different lr scales, in consecutive stages.

    Args:
        stages: Dicts with ``begin`` (first epoch, 0-based as ``runner.epoch``, or first
            iteration, as ``runner.iter``, of the stage), ``trainable`` (parameter-name prefixes;
            ``None``: everything the model's freeze policy allows), ``lr_mult`` (default 1) and
            optionally ``num_trainable_blocks`` (re-apply the backbone's freeze policy with this
            many trainable trunk blocks). Before the first ``begin`` the model trains as built.
        by_epoch: Whether ``begin`` counts epochs (else iterations).
        backbone: Attribute path of the backbone inside the model (for ``num_trainable_blocks``).
    """

    priority = "NORMAL"

    def __init__(
        self, stages: Sequence[dict], by_epoch: bool = True, backbone: str = "backbone"
    ) -> None:
        self.stages = _check_stages(stages)
        self.by_epoch = by_epoch
        self.backbone = backbone
        self.active: int | None = None
        self._allowed: set[str] | None = None
        self._initial_blocks: int | None = None
        self._saved_lrs: list[float] | None = None

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _model(runner: Any) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _get_backbone(self, model: nn.Module) -> nn.Module:
        module: Any = model
        for part in self.backbone.split("."):
            module = getattr(module, part)
        if not hasattr(module, "set_num_trainable_blocks"):
            raise TypeError(
                f"a stage sets num_trainable_blocks, but model.{self.backbone} "
                f"({type(module).__name__}) has no set_num_trainable_blocks()"
            )
        return module

    def stage_at(self, step: int) -> int | None:
        """Index of the stage in force at epoch / iteration ``step`` (``None``: before all)."""
        index = None
        for i, stage in enumerate(self.stages):
            if stage["begin"] <= step:
                index = i
        return index

    # ----------------------------------------------------------------- applying a stage
    def apply_stage(self, runner: Any, index: int) -> None:
        """Set ``requires_grad`` for stage ``index`` and refresh the model's train / eval modes."""
        model = self._model(runner)
        stage = self.stages[index]
        if self._allowed is None:
            self._allowed = {n for n, p in model.named_parameters() if p.requires_grad}
        allowed = set(self._allowed)
        blocks = stage["num_trainable_blocks"]
        if blocks is None and self._initial_blocks is not None:
            blocks = self._initial_blocks  # a later stage without the key: back to the build policy
        if blocks is not None:
            backbone = self._get_backbone(model)
            if self._initial_blocks is None:
                self._initial_blocks = backbone.num_trainable_blocks
            prefix = f"{self.backbone}.trunk."
            backbone.set_num_trainable_blocks(int(blocks))
            trunk_now = {
                f"{prefix}{n}" for n, p in backbone.trunk.named_parameters() if p.requires_grad
            }
            new = trunk_now - self._allowed
            if new and get_world_size() > 1:
                warnings.warn(
                    f"ProgressiveUnfreezeHook: stage {index} unfreezes {len(new)} trunk parameters "
                    f"that were frozen when DDP wrapped the model; DDP will not synchronise them",
                    RuntimeWarning,
                    stacklevel=2,
                )
            allowed = {n for n in allowed if not n.startswith(prefix)} | trunk_now
        prefixes = stage["trainable"]
        count = total = 0
        for name, param in model.named_parameters():
            train = name in allowed and (prefixes is None or _matches(name, prefixes))
            param.requires_grad_(train)
            if not train:
                param.grad = None
            count += param.numel() if train else 0
            total += param.numel()
        runner.model.train()
        self.active = index
        print_log(
            f"ProgressiveUnfreezeHook: stage {index + 1}/{len(self.stages)} from "
            f"{'epoch' if self.by_epoch else 'iteration'} {stage['begin']}: training "
            f"{count / 1e6:.2f}M of {total / 1e6:.2f}M parameters "
            f"({100 * count / max(total, 1):.2f}%; "
            f"{', '.join(prefixes) if prefixes else 'all allowed'}), lr x {stage['lr_mult']:g}",
            "current",
        )

    def _update(self, runner: Any, step: int) -> None:
        index = self.stage_at(step)
        if index is not None and index != self.active:
            self.apply_stage(runner, index)

    # ----------------------------------------------------------------- mmengine hook points
    def before_train(self, runner: Any) -> None:
        """Record the trainable set and enter the stage of the (possibly resumed) start point."""
        model = self._model(runner)
        self._allowed = {n for n, p in model.named_parameters() if p.requires_grad}
        self._update(runner, runner.epoch if self.by_epoch else runner.iter)

    def before_train_epoch(self, runner: Any) -> None:
        """Switch stages at epoch boundaries (``by_epoch=True``)."""
        if self.by_epoch:
            self._update(runner, runner.epoch)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Switch stages (``by_epoch=False``) and scale the learning rates for this iteration."""
        if not self.by_epoch:
            self._update(runner, runner.iter)
        if self.active is None:
            return
        lr_mult = self.stages[self.active]["lr_mult"]
        wrapper = runner.optim_wrapper
        base = getattr(wrapper, "base_param_settings", None)  # mmengine's base-lr record
        groups = wrapper.param_groups
        self._saved_lrs = [group["lr"] for group in groups]
        for group in groups:
            trains = group is base or any(p.requires_grad for p in group["params"])
            group["lr"] = group["lr"] * (lr_mult if trains else 0.0)
        for name, lrs in runner.optim_wrapper.get_lr().items():
            runner.message_hub.update_scalar(f"train/{name}", lrs[0])

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        """Put the scheduled learning rates back before the parameter schedulers step."""
        if self._saved_lrs is None:
            return
        for group, lr in zip(runner.optim_wrapper.param_groups, self._saved_lrs):
            group["lr"] = lr
        self._saved_lrs = None
