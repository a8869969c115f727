"""SpectralDistiller: a detector that trains a student from a frozen teacher with DS2D2."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub, print_log
from torch import Tensor, nn

from ...utils.checkpoint import (
    digest_hex,
    digest_tensor,
    load_checkpoint_checked,
    local_checkpoint,
    read_state_dict,
)
from ...utils.errors import CheckpointError, ConfigError
from ...utils.hub_keys import TERMS_KEY
from ...utils.phases import phase
from ..connectors.feature_adapter import align_to
from ..layers.disw import boxes_to_disw_input
from ..layers.spectral import same_decomposition
from .amplifiers import Amplifier, compile_frozen_parts, freeze, model_cfg_of, stage_hint
from .base import FrozenPartsDetector
from .distill_cfg import (
    check_component,
    merge_distill_cfg,
    resolve_kd_cfg,
)
from .input_router import InputRouter, build_input_router
from .pairing import PairPlan, plan_pair
from .strategies import DistillStrategy, KDContext, build_strategy

#: Checkpoint key prefixes of earlier releases and their names now: the 1x1 adapter was saved
#: inside the explicit loss (``explicit.adapter.*``) before it became the distiller's connector.
LEGACY_KEY_PREFIXES = {"explicit.adapter.": "connector."}


def upgrade_state_dict(state: dict, prefix: str = "") -> dict:
    """``state`` with the keys of :data:`LEGACY_KEY_PREFIXES` renamed (below ``prefix``), in
    place; returns it."""
    for old, new in LEGACY_KEY_PREFIXES.items():
        for key in [k for k in state if k.startswith(prefix + old)]:
            state[prefix + new + key[len(prefix + old):]] = state.pop(key)
    return state


@MODELS.register_module()
class SpectralDistiller(FrozenPartsDetector):
    """DS2D2: a student detector trained from a frozen teacher by an explicit spectral stream and
    an implicit stream of knowledge amplifiers.

    Per batch, with ``x`` the student's FPN maps and ``t`` the teacher's: the connector (the
    explicit loss says which: for DS2D2 a shared 1x1 conv without bias) maps ``x`` to
    ``c(x)`` on the teacher's channels and grids; the explicit stream matches wavelet sub-bands
    of ``c(x)`` and ``t`` under DISW weights; the implicit stream runs the teacher's head
    (full-frequency amplifier) on ``x`` and ``t``, and the high-frequency head on ``hf(x)`` and
    ``hf(t)``, and compares the predictions with the family's KD losses. The amplifiers read the
    raw ``x`` as published when student and teacher FPN channels match; otherwise (e.g. a SAM3
    teacher) they read ``c(x)``, an extension of the method (``distill_cfg.amplifier_input``).

    The teacher and the amplifiers are held outside ``nn.Module`` registration
    (:class:`~.base.FrozenPartsDetector`): they are absent from ``state_dict``, ``parameters()``
    (so from the optimizer and DDP), always in eval mode and run under ``no_grad`` where no
    gradient is needed. A checkpoint holds ``student.*``, the connector ``connector.*`` and the
    explicit loss's own parameters ``explicit.*`` (FGD's, MGD's); checkpoints of earlier
    releases (``explicit.adapter.*``) load (:func:`upgrade_state_dict`). ``predict`` and
    ``tensor`` modes are the student's.

    Cross-modal (an extension): with ``distill_cfg.teacher_input`` / ``student_input`` (e.g.
    ``'rgb'`` / ``'ir'``) and a paired ``data_preprocessor``
    (``MultiBandDetDataPreprocessor(modalities=...)``), each batch holds both modalities along
    channels; the teacher reads its modality's channels, the student (task loss, DISW,
    amplifiers, ``predict``) its own (:mod:`ds2d2_mm.models.distillers.input_router`).

    A teacher of another family than the student (an extension, :mod:`.pairing`): the
    amplifiers are the teacher's heads with the teacher family's strategy and KD losses, their
    targets are made on their own grid, and the student's FPN levels meet the teacher's by stride.

    For comparisons, ``distill_cfg.explicit`` may name another feature-level method
    (:mod:`ds2d2_mm.models.losses`: FitNet, FGD, PKD, MGD) or ``None`` (no explicit stream), and
    ``distill_cfg.implicit`` a prediction-level method in the amplifiers' place
    (:mod:`ds2d2_mm.models.distillers.prediction_kd`: prediction mimicking, CrossKD).

    Args:
        student: Model config of the student (any mmdet single- or two-stage detector).
        teacher_config: Path of the teacher's config file (or its model dict).
        teacher_ckpt: Teacher checkpoint (required unless ``allow_random_teacher``).
        amplifier_config: Path of the high-frequency amplifier stage's config (or its model dict).
        amplifier_ckpt: That stage's checkpoint.
        distill_cfg: Overrides of :data:`DEFAULT_DISTILL_CFG`.
        allow_random_teacher: Accept missing checkpoints (random teacher/amplifier), for tests and
            smoke runs only; a warning says so.
        data_preprocessor: Defaults to the student's.
    """

    def __init__(self, student: dict, teacher_config: str | dict, teacher_ckpt: str | None = None,
                 amplifier_config: str | dict | None = None, amplifier_ckpt: str | None = None,
                 distill_cfg: dict | None = None, allow_random_teacher: bool = False,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        student = ConfigDict(copy.deepcopy(student))
        super().__init__(data_preprocessor=data_preprocessor or student.get("data_preprocessor"),
                         init_cfg=init_cfg)
        self.distill_cfg = merge_distill_cfg(distill_cfg)
        self.student = MODELS.build(student)
        self.strategy: DistillStrategy = build_strategy(self.student, self.distill_cfg["strategy"])
        teacher_ckpt = local_checkpoint(teacher_ckpt, "model.teacher_ckpt")
        amplifier_ckpt = local_checkpoint(amplifier_ckpt, "model.amplifier_ckpt")
        teacher_cfg = model_cfg_of(teacher_config, "teacher")
        teacher_cfg.pop("init_cfg", None)
        teacher = MODELS.build(teacher_cfg)
        # the pair: same family (published), or a teacher of another family (pairing.py): then
        # the amplifiers' strategy, the KD defaults and the FPN levels are the teacher's
        pair: PairPlan = plan_pair(self.student, teacher, self.strategy, self.distill_cfg)
        self.hide("pair", pair)
        defaults = pair.amplifier_strategy.default_kd_losses(pair.kd_detector)
        kd_cfgs = {key: resolve_kd_cfg(defaults[key], self.distill_cfg[key])
                   for key in ("kd_cls", "kd_reg")}
        for key, cfg in kd_cfgs.items():
            check_component(f"distill_cfg.{key}", cfg)
        # SHA-256 of the teacher and amplifier files (ds2d2_mm.utils.checkpoint), in every
        # checkpoint
        self.register_buffer("provenance_sha256", torch.zeros(2, 32, dtype=torch.uint8))
        self.hide("frozen_files", {"teacher": teacher_ckpt, "amplifier": None})
        if teacher_ckpt is not None or not allow_random_teacher:
            load_checkpoint_checked(teacher, teacher_ckpt, "teacher checkpoint",
                                    stage_hint(teacher_config, "teacher"))
            self.provenance_sha256[0] = digest_tensor(teacher_ckpt)
        else:
            warnings.warn("SpectralDistiller: no teacher_ckpt, the teacher is random "
                          "(allow_random_teacher=True)", stacklevel=2)
        weights = self.distill_cfg["amplifiers"]
        builder_cfg = dict(self.distill_cfg["builder"], full=weights.get("full", 0) > 0,
                           high=weights.get("high", 0) > 0)
        amplifiers = MODELS.build(builder_cfg)(
            freeze(teacher), pair.amplifier_strategy, amplifier_config, amplifier_ckpt,
            allow_random=allow_random_teacher)
        if builder_cfg["high"] and amplifier_ckpt is not None:
            self._check_amplifier_teacher(amplifier_ckpt, amplifier_config)
            self.provenance_sha256[1] = digest_tensor(amplifier_ckpt)
            self.frozen_files["amplifier"] = amplifier_ckpt
        self.hide("teacher", teacher)
        self.hide("amplifiers", amplifiers)
        self.hide("router", build_input_router(self.distill_cfg, self.data_preprocessor, teacher,
                                               self.student))

        (s_ch, t_ch), s_lv = pair.channels, pair.num_levels
        explicit_cfg = self.distill_cfg["explicit"]
        explicit = None if explicit_cfg is None else MODELS.build(
            dict(explicit_cfg, student_channels=s_ch, teacher_channels=t_ch, num_levels=s_lv))
        self.amplifier_reads_raw = self._amplifier_reads_raw(s_ch, t_ch)
        if explicit is None and amplifiers and not self.amplifier_reads_raw:
            raise ConfigError("distill_cfg.explicit=None leaves no connector for the amplifiers "
                              "to read the student through (its channels differ from the "
                              "teacher's); keep an explicit stream or set amplifier_input='raw'")
        # registered before the explicit loss: the parameter order of earlier checkpoints
        # (adapter first, then the loss's own parameters) and of their optimizer state is kept
        self.connector = None if explicit is None else self._build_connector(
            explicit, s_ch, t_ch, s_lv)
        self.explicit = explicit
        implicit_cfg = self.distill_cfg["implicit"]
        self.implicit = None if implicit_cfg is None else MODELS.build(implicit_cfg)
        if self.implicit is not None:
            self.implicit.check(self.strategy, self.student, teacher)
        kd = {key: MODELS.build(cfg) for key, cfg in kd_cfgs.items()}
        pair.amplifier_strategy.check_kd_losses(pair.kd_detector, kd)
        self.kd_cls, self.kd_reg = kd["kd_cls"], kd["kd_reg"]

    # -- provenance of the frozen parts ---------------------------------------------------------
    def _changed(self, message: str) -> None:
        """A teacher or amplifier file differs from the one recorded: refuse, or warn."""
        if self.distill_cfg["checkpoint_changes"] == "warn":
            print_log(f"SpectralDistiller: {message} (accepted: "
                      "distill_cfg.checkpoint_changes='warn')", logger="current", level=30)
            return
        raise CheckpointError(
            f"{message}. If this is intended, pass --accept-changed-checkpoints to "
            "tools/train.py (distill_cfg.checkpoint_changes='warn').")

    def _check_amplifier_teacher(self, amplifier_ckpt: str, amplifier_config) -> None:
        """The amplifier stage must have started from this distiller's teacher checkpoint."""
        state = read_state_dict(amplifier_ckpt, "amplifier checkpoint",
                                stage_hint(amplifier_config, "high-frequency amplifier"))
        ours = digest_hex(self.provenance_sha256[0])
        theirs = digest_hex(state["teacher_sha256"]) if "teacher_sha256" in state else ""
        if ours and theirs and ours != theirs:
            self._changed(
                f"amplifier checkpoint {amplifier_ckpt!r} was trained from a teacher checkpoint "
                f"with sha256 {theirs}, but this distiller's teacher checkpoint "
                f"{self.frozen_files['teacher']!r} has sha256 {ours}: it belongs to another "
                "teacher; retrain the amplifier stage from this teacher")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """On resume or ``load_from``: the teacher and amplifier files must still hold what the
        checkpoint was trained with (``distill_cfg.checkpoint_changes``); the digests of the
        files in use are kept. Keys of earlier releases are renamed first."""
        upgrade_state_dict(state_dict, prefix)
        ours = self.provenance_sha256.clone()
        theirs = state_dict.get(prefix + "provenance_sha256")
        if theirs is not None and tuple(theirs.shape) == tuple(ours.shape):
            for row, what in enumerate(("teacher", "amplifier")):
                old, new = digest_hex(theirs[row]), digest_hex(ours[row])
                if old and new and old != new:
                    self._changed(
                        f"the {what} checkpoint changed since this checkpoint was written: it "
                        f"was trained with a {what} file of sha256 {old}, and "
                        f"{self.frozen_files[what]!r} now has sha256 {new}")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        with torch.no_grad():
            self.provenance_sha256.copy_(ours)

    def _amplifier_reads_raw(self, student_channels: int, teacher_channels: int) -> bool:
        """Whether the amplifiers read the raw student maps (published) or the adapted ones."""
        choice = self.distill_cfg["amplifier_input"]
        same = student_channels == teacher_channels
        if choice == "raw" and not same:
            raise ConfigError(
                f"distill_cfg.amplifier_input='raw' needs the student's FPN channels "
                f"({student_channels}) to equal the teacher's ({teacher_channels}); use 'auto' "
                "or 'adapted' (the amplifiers then read the 1x1-adapted maps)")
        if choice == "auto":
            return same
        return choice == "raw"

    @staticmethod
    def _build_connector(explicit: nn.Module, student_channels: int, teacher_channels: int,
                         num_levels: int) -> nn.Module:
        """The connector the explicit loss asks for, from the student's FPN channels to the
        teacher's."""
        wants = getattr(explicit, "connector_cfg", None)
        if not callable(wants):
            raise ConfigError(
                f"distill_cfg.explicit: {type(explicit).__name__} has no connector_cfg(); an "
                "explicit-stream loss subclasses ds2d2_mm.models.losses.StreamLoss and says "
                "which connector it needs between student and teacher maps")
        return MODELS.build(dict(wants(), in_channels=student_channels,
                                 out_channels=teacher_channels, num_levels=num_levels))

    def upgrade_state_dict(self, state: dict) -> dict:
        """A state dict of this model's own keys, checkpoint keys of earlier releases renamed
        (for checks that compare keys before loading)."""
        return upgrade_state_dict(dict(state))

    # -- frozen, unregistered parts and what each model reads -----------------------------------
    @property
    def inner(self) -> BaseDetector:
        """The student: it predicts and is exported."""
        return self.student

    def inner_inputs(self, batch_inputs: Tensor) -> Tensor:
        """What the student reads of a batch (all of it, or its modality)."""
        return self.router.student_inputs(batch_inputs)

    def hidden_modules(self) -> list[nn.Module]:
        """The teacher and the amplifiers' heads and decomposers."""
        mods = [self.teacher] if "teacher" in self.__dict__ else []
        for amp in self.__dict__.get("amplifiers", []):
            mods += amp.modules()
        return mods

    def teacher_feats(self, inputs: Tensor) -> list[Tensor]:
        """Teacher FPN levels (N, C_t, H_l, W_l) under ``no_grad``; ``inputs`` as the teacher
        reads them (``router.teacher_inputs``)."""
        with torch.no_grad():
            return list(self.teacher.extract_feat(inputs))

    # -- the detector API -----------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        """Student task losses plus the named terms of both streams: ``loss_exp_low``,
        ``loss_exp_high`` and ``loss_imp_{full,high}_{cls,reg}`` (or the comparison method's).

        Each part runs in a named :func:`~ds2d2_mm.utils.phases.phase` (timed only under the
        benchmark's recorder). With ``distill_cfg.share_work`` the teacher maps' wavelet bands
        are computed once for the explicit stream and the high-frequency amplifier, and the
        amplifiers share anchors, label weights and RoIs (:attr:`KDContext.cache`): every term
        is the one the straightforward path gives."""
        router: InputRouter = self.router
        frozen_amp = self._prepare_acceleration(batch_inputs.device)
        with phase("student pass"):
            sp = self.strategy.student_pass(self.student, router.student_inputs(batch_inputs),
                                            batch_data_samples)
        with phase("teacher forward"), frozen_amp():
            feats_t = self.teacher_feats(router.teacher_inputs(batch_inputs))
        sp = self.pair.amplifier_pass(sp, feats_t, batch_data_samples, self.teacher)
        if len(sp.feats) != len(feats_t):
            raise ValueError(f"SpectralDistiller: student gave {len(sp.feats)} FPN levels, "
                             f"teacher {len(feats_t)}")
        terms: dict[str, Tensor] = {}
        bands_t = self._shared_teacher_bands(feats_t)
        with phase("explicit stream"):
            connected = (None if self.connector is None
                         else align_to(self.connector(sp.feats), feats_t))
            if self.explicit is not None:
                boxes = [boxes_to_disw_input(s.gt_instances.bboxes)[0]
                         for s in batch_data_samples]
                extra = {} if bands_t is None else {"teacher_bands": bands_t}
                terms.update(self.explicit(connected, feats_t, boxes,
                                           tuple(batch_inputs.shape[-2:]), **extra))
        ctx = KDContext(samples=batch_data_samples, student_pass=sp, kd_cls=self.kd_cls,
                        kd_reg=self.kd_reg, strategy=self.pair.amplifier_strategy,
                        student=self.student, teacher=self.teacher,
                        cache={} if self.distill_cfg["share_work"] else None)
        if self.amplifiers:
            feats_amp = self.amplifier_feats(sp.feats, connected, feats_t)
            for amp in self.amplifiers:
                weight = float(self.distill_cfg["amplifiers"][amp.name])
                with phase(f"amplifier {amp.name}"):
                    with phase("inputs"):
                        with torch.no_grad():
                            shared = bands_t if self._shares_bands(amp) else None
                            inputs_t = amp.inputs(feats_t, bands=shared)
                        inputs_s = amp.inputs(feats_amp)
                    with frozen_amp():
                        kd = ctx.strategy.kd_losses(amp.head, inputs_s, inputs_t, ctx)
                for key, value in kd.items():
                    terms[f"loss_imp_{amp.name}_{key}"] = weight * value
        if self.implicit is not None:  # a prediction-level method in the amplifiers' place
            with phase("implicit stream"):
                terms.update(self.implicit(ctx, align_to(sp.feats, feats_t), feats_t))
        losses = dict(sp.losses)
        losses.update(terms)
        self.check_finite(losses)
        return losses

    # -- work shared inside a step, and the GPU options -----------------------------------------
    def _shares_bands(self, amp: Amplifier) -> bool:
        """Whether ``amp`` reads the teacher bands the explicit stream computes."""
        return (self.distill_cfg["share_work"] and self.explicit is not None
                and getattr(self.explicit, "takes_teacher_bands", False)
                and same_decomposition(amp.decomposer, getattr(self.explicit, "decomposer", None)))

    def _shared_teacher_bands(self, feats_t: list[Tensor]) -> list[tuple[Tensor, Tensor]] | None:
        """``(low, high)`` of each teacher level, computed once for the explicit stream and the
        high-frequency amplifier when both decompose alike, on fp32 maps (else ``None``: each
        computes its own). The explicit stream decomposes ``t.float()``, which is ``t`` itself
        for fp32 maps, so the bands are the same tensors either way."""
        if not any(self._shares_bands(a) for a in self.amplifiers):
            return None
        if any(t.dtype != torch.float32 for t in feats_t):
            return None
        with torch.no_grad(), phase("teacher bands"):
            return [self.explicit.decomposer(t) for t in feats_t]

    def _prepare_acceleration(self, device: torch.device) -> Callable[[], Any]:
        """Applies ``distill_cfg.accelerate`` once (on the first step, when the device is
        known); returns the context factory of the frozen parts' autocast.

        Raises:
            ConfigError: ``compile`` or ``frozen_fp16`` asked for on a device that is not CUDA.
        """
        acc = self.distill_cfg["accelerate"]
        if acc["compile"] or acc["frozen_fp16"]:
            if device.type != "cuda":
                on = [k for k in ("compile", "frozen_fp16") if acc[k]]
                raise ConfigError(
                    f"distill_cfg.accelerate {on} are GPU options, but the batch is on "
                    f"{device.type!r}: set distill_cfg.accelerate=dict(compile=False, "
                    "frozen_fp16=False) to train on this device (the step is the same without "
                    "them), or train on a CUDA device")
            if acc["compile"] and not self.__dict__.get("_compiled", False):
                compile_frozen_parts(self.amplifiers, (self.kd_cls, self.kd_reg))
                self.hide("_compiled", True)
        if not acc["frozen_fp16"]:
            return contextlib.nullcontext
        return lambda: torch.autocast(device.type, dtype=torch.float16)

    def amplifier_feats(self, student: Sequence[Tensor], connected: list[Tensor] | None,
                        teacher: list[Tensor]) -> list[Tensor]:
        """What the amplifiers read of the student: its raw FPN maps (published; the connector
        belongs to the explicit stream), resized to the teacher's grids where they differ, or the
        connected maps when the channels differ (an extension). Each level (N, C_t, H_l, W_l)."""
        return align_to(student, teacher) if self.amplifier_reads_raw else connected

    def check_finite(self, losses: dict[str, Tensor | list[Tensor]]) -> None:
        """Name the non-finite loss terms (task and distillation) with the iteration, and raise
        or (``distill_cfg.nonfinite='skip'``) leave the skipping of the step to the guarded
        optimizer wrapper. One host sync."""
        names, values = [], []
        for key, value in losses.items():
            if "loss" not in key:
                continue
            for i, v in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                names.append(key if not isinstance(value, (list, tuple)) else f"{key}[{i}]")
                values.append(v.detach().float().sum())
        if not values:
            return
        finite = torch.isfinite(torch.stack(values))
        if bool(finite.all()):
            return
        bad = [n for n, ok in zip(names, finite.tolist(), strict=True) if not ok]
        hub = MessageHub.get_current_instance()
        it = hub.get_info("iter", None)
        what = f"non-finite loss terms {bad} at iteration {it}"
        if self.distill_cfg["nonfinite"] == "raise":
            raise FloatingPointError(
                f"SpectralDistiller: {what}; set distill_cfg.nonfinite='skip' to skip such "
                "optimizer steps instead")
        hub.update_info(TERMS_KEY, what)


__all__ = ["Amplifier", "LEGACY_KEY_PREFIXES", "SpectralDistiller", "merge_distill_cfg",
           "upgrade_state_dict"]
