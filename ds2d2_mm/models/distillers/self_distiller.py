"""Self-distillation against forgetting: the frozen original trunk teaches the fine-tuned one.

:class:`TrunkSelfDistiller` wraps any mmdet detector whose backbone has ``forward_trunk(x)`` and
``build_frozen_trunk()`` (:class:`~ds2d2_mm.models.backbones.SAM3ViTBackbone`) and adds the DS2D2
explicit stream between the fine-tuned trunk's output map and the original trunk's::

    images ──detector.loss──> task losses           (the trunk runs once; its output is recorded)
                 └─ forward_trunk ──> S (N, C, h, w)  fine-tuned, before the spectral adapter
    images ──original trunk (frozen, no_grad)──> T (N, C, h, w)
    loss_sd_low  = weight_low  * mean(w * (LL(S) - LL(T))^2) / mean(T^2)
    loss_sd_high = weight_high * mean(w * (H(S)  - H(T))^2)  / mean(T^2)

with ``LL``/``H`` the Haar sub-bands and ``w`` the DISW map of the ground-truth boxes on the
sub-band grid (:class:`~ds2d2_mm.models.losses.DISWLoss` with an identity adapter: the channels
match). Dividing by the original map's mean square (``normalize=True``) makes the weights
independent of the trunk's feature scale: a fine-tuned map at cosine similarity 0.95 to the original
(the retention tool's pass mark) has a relative squared drift of about 0.1, which gives
``loss_sd_low + loss_sd_high`` of roughly 0.1-0.4 with unit weights.

Checkpoint layout: the wrapped detector's modules are registered on the wrapper under their own
names (``backbone``, ``neck``, ``bbox_head``, ...), not under a ``detector.`` prefix, so a
checkpoint has exactly the keys of the plain detector: it loads into the plain detector (as a
DS2D2 teacher, for testing, for the high-frequency amplifier stage) and the other way round, and
``tools/sam3_retention.py`` / ``tools/export_sam3_trunk.py``, ``ProgressiveUnfreezeHook`` and
``LayerDecayOptimWrapperConstructor`` find the trunk under ``backbone.trunk.`` as before. The
wrapped detector object itself and the original trunk are held outside ``nn.Module``
registration: absent from ``state_dict``, ``parameters()`` (so from the optimizer and DDP); the
original trunk is always in eval mode and follows ``.to()`` / ``.cuda()``, as does the loss
module (``sd_loss``, hidden as well so that no decomposer buffer adds a key).

Two config forms build the same model::

    # flat: the detector's own keys plus detector_type (keeps cfg.model.backbone etc. where
    # tools and mmdet base configs expect them; used by configs/sam3/)
    model = dict(type='TrunkSelfDistiller', detector_type='RetinaNet', weight_low=1.0,
                 backbone=dict(type='SAM3ViTBackbone', ...), neck=..., bbox_head=...)
    # nested: wrap any detector config
    model = dict(type='TrunkSelfDistiller', detector={{_base_.model}}, weight_low=1.0)
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from torch import Tensor, nn

from ...utils import record_call
from ..backbones import run_trunk
from ..layers.disw import boxes_to_disw_input
from .base import FrozenPartsDetector

__all__ = ["TrunkSelfDistiller", "detector_config_of"]

#: Keys of a ``TrunkSelfDistiller`` config that are not the wrapped detector's.
_OWN_KEYS = ("type", "detector", "detector_type", "weight_low", "weight_high", "decomposer",
             "use_disw", "normalize")
#: Floor of the normaliser ``mean(T^2)`` (an all-zero original map would divide by zero).
_MIN_ENERGY = 1e-12
#: The Haar explicit stream works on one map: the trunk output.
_NUM_TRUNK_LEVELS = 1
#: Channel count handed to the loss's identity adapter, which has no parameters and never uses
#: it (student and teacher are the same trunk, so the channels match by construction).
_IDENTITY_CHANNELS = 1


def detector_config_of(cfg: dict) -> ConfigDict:
    """The wrapped detector's model config from a ``TrunkSelfDistiller`` config (either form).

    A config of any other type is returned as it is (copied), so callers can pass any detector.

    Args:
        cfg: A model config, e.g. ``Config.fromfile('configs/sam3/retina_sam3_dior.py').model``.
    """
    cfg = ConfigDict(copy.deepcopy(dict(cfg)))
    if cfg.get("type") != "TrunkSelfDistiller":
        return cfg
    rest = {k: v for k, v in cfg.items() if k not in _OWN_KEYS}
    return _inner_config(cfg.get("detector"), cfg.get("detector_type"), rest)


def _inner_config(detector: dict | None, detector_type: str | None,
                  rest: dict[str, Any]) -> ConfigDict:
    """Merge the two config forms into the detector's config."""
    if detector is not None:
        extra = set(rest) - {"data_preprocessor", "init_cfg"}
        if detector_type is not None or extra:
            raise ValueError(
                "TrunkSelfDistiller: give the detector either as detector=dict(...) or as its own "
                f"keys with detector_type=..., not both (got detector_type={detector_type!r}, "
                f"keys {sorted(extra)})")
        out = ConfigDict(copy.deepcopy(dict(detector)))
        for key, value in rest.items():
            if value is not None:
                out.setdefault(key, value)
        return out
    if detector_type is None:
        raise ValueError("TrunkSelfDistiller needs detector=dict(type=..., ...) or "
                         "detector_type='RetinaNet' (or another detector) with the detector's "
                         "own keys (backbone, neck, bbox_head, ...)")
    return ConfigDict(type=detector_type, **{k: v for k, v in rest.items() if v is not None})


@MODELS.register_module()
class TrunkSelfDistiller(FrozenPartsDetector):
    """A detector trained with self-distillation of its backbone trunk against forgetting.

    ``loss`` runs the wrapped detector's own ``loss`` once, recording ``backbone.forward_trunk``,
    and adds ``loss_sd_low`` / ``loss_sd_high`` (module docstring); ``predict``, ``_forward`` and
    ``extract_feat`` are the wrapped detector's. The terms are left out in iterations where the
    trunk has no trainable parameter (e.g. a head-only stage of ``ProgressiveUnfreezeHook``):
    nothing could follow their gradient, and the original trunk's forward is saved.

    The original trunk: with ``backbone.checkpoint`` set, it is loaded from that file (the
    original weights, whatever training did since) at the first ``loss`` call, so a model that
    only predicts, or serves as a DS2D2 teacher, never holds it. Without a checkpoint (random
    init: tests, smoke runs) it is a copy of the trunk taken at build and again in
    ``init_weights``; resuming such a run copies the random init, not the pre-resume trunk.

    Under drop path (SAM3's preset: 0.1 in the trainable blocks) the fine-tuned trunk's map is
    stochastic in training and the original's is not, so the terms are above zero even at
    initialisation; their gradient then also asks the trainable blocks to be robust to drop path.

    Args:
        detector: Model config of the wrapped detector (nested form).
        weight_low: Weight of the low-band (LL) term.
        weight_high: Weight of the high-band (LH, HL, HH) term.
        decomposer: ``'haar'`` (default), a pywt wavelet name, ``'fft'`` or a decomposer config.
        use_disw: Weight locations by DISW maps of the ground-truth boxes (``False``: plain MSE).
        normalize: Divide both terms by the original map's mean square (scale-free weights).
        detector_type: Registered type of the wrapped detector (flat form).
        data_preprocessor: The detector's data preprocessor (flat form; in the nested form it
            is used only when ``detector`` has none).
        init_cfg: The detector's ``init_cfg`` (same rule).
        **detector_kwargs: The detector's own arguments (flat form): ``backbone``, ``neck``,
            ``bbox_head``, ``train_cfg``, ``test_cfg``, ...
    """

    def __init__(self, detector: dict | None = None, weight_low: float = 1.0,
                 weight_high: float = 1.0, decomposer: str | dict | None = "haar",
                 use_disw: bool = True, normalize: bool = True, detector_type: str | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 **detector_kwargs: Any) -> None:
        inner_cfg = _inner_config(detector, detector_type, dict(
            detector_kwargs, data_preprocessor=data_preprocessor, init_cfg=init_cfg))
        super().__init__()
        inner: BaseDetector = MODELS.build(inner_cfg)
        backbone = getattr(inner, "backbone", None)
        missing = [m for m in ("forward_trunk", "build_frozen_trunk")
                   if not callable(getattr(backbone, m, None))]
        if missing:
            raise TypeError(
                f"TrunkSelfDistiller: the backbone of {inner_cfg.get('type')} "
                f"({type(backbone).__name__}) has no {' / '.join(missing)}; self-distillation "
                "needs a trunk backbone such as SAM3ViTBackbone")
        own = [n for n, _ in inner.named_parameters(recurse=False)]
        own += [n for n, _ in inner.named_buffers(recurse=False)]
        if own:
            raise TypeError(f"TrunkSelfDistiller: {type(inner).__name__} holds tensors outside "
                            f"its submodules ({own}); only submodules can be shared")
        self.hide("_detector", inner)
        # The detector's submodules become the wrapper's own: plain-detector checkpoint keys.
        for name, child in inner.named_children():
            setattr(self, name, child)
        self.weight_low = float(weight_low)
        self.weight_high = float(weight_high)
        self.normalize = normalize
        # Hidden too (no parameters; a pywt decomposer's filter buffers would otherwise add keys
        # that the plain detector's checkpoint lacks).
        self.hide("sd_loss", MODELS.build(dict(
            type="DISWLoss", student_channels=_IDENTITY_CHANNELS,
            teacher_channels=_IDENTITY_CHANNELS, num_levels=_NUM_TRUNK_LEVELS,
            lambda_low=self.weight_low, lambda_high=self.weight_high, decomposer=decomposer,
            use_disw=use_disw, identity_adapter=True)))
        self.hide("_original", None)
        if not self._original_from_file:
            self.hide("_original", backbone.build_frozen_trunk())

    # -- the hidden parts --------------------------------------------------------------------
    @property
    def inner(self) -> BaseDetector:
        """The wrapped detector, which ``predict``, ``tensor`` mode and ``extract_feat`` run."""
        return self._detector

    def hidden_modules(self) -> list[nn.Module]:
        """The original trunk (once built) and the loss module."""
        return [m for m in (self.__dict__.get("_original"), self.__dict__.get("sd_loss"))
                if m is not None]

    @property
    def detector(self) -> BaseDetector:
        """The wrapped detector (its modules are this model's modules)."""
        return self._detector

    @property
    def _original_from_file(self) -> bool:
        return getattr(self.backbone, "checkpoint", None) is not None

    def original_trunk(self) -> nn.Module:
        """The frozen original trunk (eval, no gradients), built on first use if needed."""
        if self._original is None:
            self.hide("_original", self.backbone.build_frozen_trunk())
        return self._original.eval()

    def train(self, mode: bool = True) -> TrunkSelfDistiller:
        """The detector follows ``mode``; the original trunk stays in eval mode."""
        super().train(mode)
        self._detector.training = mode
        return self

    def init_weights(self) -> None:
        """The wrapped detector's initialisation; a trunk without checkpoint is copied again."""
        self._detector.init_weights()
        if not self._original_from_file:
            self.hide("_original", self.backbone.build_frozen_trunk())

    # -- self-distillation -------------------------------------------------------------------
    def original_map(self, inputs: Tensor) -> Tensor:
        """The original trunk's map (N, C, h, w) of (N, 3, H, W) inputs, without autograd."""
        with torch.no_grad():
            return run_trunk(self.original_trunk(), inputs, False)

    def self_distill_losses(self, finetuned: Tensor, inputs: Tensor,
                            samples: SampleList) -> dict[str, Tensor]:
        """``loss_sd_low`` and ``loss_sd_high`` (fp32 scalars) of a fine-tuned trunk map.

        Args:
            finetuned: The fine-tuned trunk's map (N, C, h, w) of ``inputs``.
            inputs: The preprocessed batch (N, 3, H, W).
            samples: Its data samples (ground-truth boxes for DISW, in input pixels).

        Returns:
            The two terms, or ``{}`` when ``finetuned`` carries no gradient.
        """
        if not (torch.is_grad_enabled() and finetuned.requires_grad):
            return {}
        original = self.original_map(inputs)
        boxes = [boxes_to_disw_input(s.gt_instances.bboxes)[0] for s in samples]
        terms = self.sd_loss([finetuned], [original], boxes, tuple(inputs.shape[-2:]))
        if self.normalize:
            energy = original.float().pow(2).mean().clamp_min(_MIN_ENERGY)
            terms = {k: v / energy for k, v in terms.items()}
        return {"loss_sd_low": terms["loss_exp_low"], "loss_sd_high": terms["loss_exp_high"]}

    # -- the detector API --------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        """The wrapped detector's losses plus ``loss_sd_low`` and ``loss_sd_high``."""
        with record_call(self.backbone, "forward_trunk") as rec:
            losses = self._detector.loss(batch_inputs, batch_data_samples)
        if not rec.called:
            raise RuntimeError("TrunkSelfDistiller: the detector's loss did not call "
                               "backbone.forward_trunk, so there is no trunk map to distil")
        losses = dict(losses)
        losses.update(self.self_distill_losses(rec.output, batch_inputs, batch_data_samples))
        return losses
