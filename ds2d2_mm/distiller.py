"""SpectralDistiller: a detector that trains a student from a frozen teacher with DS2D2."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from torch import Tensor, nn

from .amplifiers import Amplifier, freeze, model_cfg_of, stage_hint
from .checkpoint import load_checkpoint_checked
from .disw import boxes_to_disw_input
from .losses.explicit import align_to
from .strategies import DistillStrategy, build_strategy

DEFAULT_DISTILL_CFG: dict = dict(
    # explicit stream: DISW-weighted wavelet sub-band matching (see DISWLoss)
    explicit=dict(type="DISWLoss", lambda_low=1.0, lambda_high=1.0, shared_adapter=True,
                  decomposer="haar"),
    # implicit stream weights; 0 disables an amplifier
    amplifiers=dict(full=1.0, high=1.0),
    # what the amplifiers read of the student: 'raw' FPN maps (published; needs the teacher's
    # channels), 'adapted' maps (through the explicit stream's 1x1 adapter; an extension for
    # teachers with other channels), or 'auto': raw when the channels match, else adapted
    amplifier_input="auto",
    # KD losses of the amplified predictions; None: the published ones of the student's family
    # (SingleStageStrategy / TwoStageStrategy.default_kd_losses). A dict without 'type', or with
    # the default's type, updates the default.
    kd_cls=None,
    kd_reg=None,
    builder=dict(type="KnowledgeAmplifierBuilder"),
    strategy=None,  # None: chosen from the student's structure
    nonfinite="raise",  # or "skip": drop a non-finite distillation term for that iteration
)


def merge_distill_cfg(cfg: dict | None) -> dict:
    """``DEFAULT_DISTILL_CFG`` updated (one level deep for dicts) with ``cfg``."""
    out = copy.deepcopy(DEFAULT_DISTILL_CFG)
    unknown = set(cfg or {}) - set(out)
    if unknown:
        raise KeyError(f"distill_cfg: unknown keys {sorted(unknown)}; known: {sorted(out)}")
    for key, value in (cfg or {}).items():
        same_type = isinstance(value, dict) and value.get("type", None) in (
            None, (out[key] or {}).get("type") if isinstance(out[key], dict) else None)
        if isinstance(out[key], dict) and same_type:
            out[key].update(value)
        else:
            out[key] = copy.deepcopy(dict(value)) if isinstance(value, dict) else value
    if out["nonfinite"] not in ("raise", "skip"):
        raise ValueError("distill_cfg.nonfinite must be 'raise' or 'skip', "
                         f"got {out['nonfinite']!r}")
    if out["amplifier_input"] not in AMPLIFIER_INPUTS:
        raise ValueError(f"distill_cfg.amplifier_input must be one of {AMPLIFIER_INPUTS}, "
                         f"got {out['amplifier_input']!r}")
    return out


#: Values of ``distill_cfg.amplifier_input``.
AMPLIFIER_INPUTS = ("auto", "raw", "adapted")


def _unscoped(type_name: str) -> str:
    """A registry name without its scope prefix (``'mmdet.L1Loss'`` -> ``'L1Loss'``)."""
    return type_name.split(".")[-1]


def resolve_kd_cfg(default: dict, given: dict | None) -> dict:
    """``given`` over the strategy's ``default`` KD loss config: ``None`` keeps the default, a
    dict without ``type`` (or with the default's, scope prefix aside) updates it, another type
    replaces it."""
    if given is None:
        return copy.deepcopy(default)
    given = dict(given)
    if _unscoped(given.get("type", default["type"])) == _unscoped(default["type"]):
        return {**default, **given, "type": default["type"]}
    return copy.deepcopy(given)


def _fpn_channels(detector: BaseDetector, what: str) -> tuple[int, int]:
    """(out_channels, num_outs) of ``detector``'s neck."""
    neck = getattr(detector, "neck", None)
    channels = getattr(neck, "out_channels", None)
    levels = getattr(neck, "num_outs", None)
    if channels is None or levels is None:
        raise ValueError(f"SpectralDistiller: the {what} needs an FPN-like neck with "
                         f"out_channels and num_outs, got {type(neck).__name__}")
    return channels, levels


@MODELS.register_module()
class SpectralDistiller(BaseDetector):
    """DS2D2: a student detector trained from a frozen teacher by an explicit spectral stream and
    an implicit stream of knowledge amplifiers.

    Per batch, with ``x`` the student's FPN maps and ``t`` the teacher's: the explicit stream
    matches wavelet sub-bands of ``adapter(x)`` (a 1x1 conv, no bias) and ``t`` under DISW
    weights; the implicit stream runs the teacher's head (full-frequency amplifier) on ``x`` and
    ``t``, and the high-frequency head on ``hf(x)`` and ``hf(t)``, and compares the predictions
    with the family's KD losses. The amplifiers read the raw ``x`` as published when student and
    teacher FPN channels match; otherwise (e.g. a SAM3 teacher) they read ``adapter(x)``, an
    extension of the method (``distill_cfg.amplifier_input``).

    The teacher and the amplifiers are held outside ``nn.Module`` registration: they are absent
    from ``state_dict``, ``parameters()`` (so from the optimizer and DDP), always in eval mode and
    run under ``no_grad`` where no gradient is needed. A checkpoint holds ``student.*`` and the
    explicit stream's adapter ``explicit.*``. ``predict`` and ``tensor`` modes are the student's.

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

        teacher_cfg = model_cfg_of(teacher_config, "teacher")
        teacher_cfg.pop("init_cfg", None)
        teacher = MODELS.build(teacher_cfg)
        if teacher_ckpt is not None or not allow_random_teacher:
            load_checkpoint_checked(teacher, teacher_ckpt, "teacher checkpoint",
                                    stage_hint(teacher_config, "teacher"))
        else:
            warnings.warn("SpectralDistiller: no teacher_ckpt, the teacher is random "
                          "(allow_random_teacher=True)", stacklevel=2)
        weights = self.distill_cfg["amplifiers"]
        builder_cfg = dict(self.distill_cfg["builder"], full=weights.get("full", 0) > 0,
                           high=weights.get("high", 0) > 0)
        amplifiers = MODELS.build(builder_cfg)(
            freeze(teacher), self.strategy, amplifier_config, amplifier_ckpt,
            allow_random=allow_random_teacher)
        self._hide("teacher", teacher)
        self._hide("amplifiers", amplifiers)
        self._hide("_renorm", self._input_renormaliser(teacher))

        s_ch, s_lv = _fpn_channels(self.student, "student")
        t_ch, t_lv = _fpn_channels(teacher, "teacher")
        if s_lv != t_lv:
            raise ValueError(f"SpectralDistiller: the student has {s_lv} FPN levels and the "
                             f"teacher {t_lv}; set the student's neck.num_outs to {t_lv}")
        self.explicit = MODELS.build(dict(self.distill_cfg["explicit"], student_channels=s_ch,
                                          teacher_channels=t_ch, num_levels=s_lv))
        self.amplifier_reads_raw = self._amplifier_reads_raw(s_ch, t_ch)
        defaults = self.strategy.default_kd_losses(self.student)
        kd = {key: MODELS.build(resolve_kd_cfg(defaults[key], self.distill_cfg[key]))
              for key in ("kd_cls", "kd_reg")}
        self.strategy.check_kd_losses(self.student, kd)
        self.kd_cls, self.kd_reg = kd["kd_cls"], kd["kd_reg"]

    def _amplifier_reads_raw(self, student_channels: int, teacher_channels: int) -> bool:
        """Whether the amplifiers read the raw student maps (published) or the adapted ones."""
        choice = self.distill_cfg["amplifier_input"]
        same = student_channels == teacher_channels
        if choice == "raw" and not same:
            raise ValueError(
                f"distill_cfg.amplifier_input='raw' needs the student's FPN channels "
                f"({student_channels}) to equal the teacher's ({teacher_channels}); use 'auto' "
                "or 'adapted' (the amplifiers then read the 1x1-adapted maps)")
        if choice == "auto":
            return same
        return choice == "raw"

    # -- frozen, unregistered parts -------------------------------------------------------------
    def _hide(self, name: str, value: object) -> None:
        """Set an attribute that ``nn.Module`` does not register (no params, no state_dict)."""
        object.__setattr__(self, name, value)

    def _hidden_modules(self) -> list[nn.Module]:
        mods = [self.teacher] if "teacher" in self.__dict__ else []
        for amp in self.__dict__.get("amplifiers", []):
            mods += amp.modules()
        return mods

    def _apply(self, fn: Callable, *args, **kwargs) -> SpectralDistiller:
        """Device and dtype moves (``to``, ``cuda``, ...) reach the hidden teacher too."""
        for m in self._hidden_modules():
            m._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> SpectralDistiller:
        """The student follows ``mode``; teacher and amplifiers stay in eval mode."""
        super().train(mode)
        for m in self._hidden_modules():
            m.eval()
        return self

    def _input_renormaliser(self, teacher: BaseDetector) -> tuple[Tensor, Tensor] | None:
        """(scale, shift) mapping student-normalised inputs to the teacher's normalisation, or
        ``None`` when both preprocessors normalise alike."""
        sp, tp = self.data_preprocessor, teacher.data_preprocessor
        enabled = [getattr(p, "_enable_normalize", False) for p in (sp, tp)]
        if not all(enabled):
            return None
        if torch.equal(sp.mean, tp.mean) and torch.equal(sp.std, tp.std):
            return None
        print_log("SpectralDistiller: teacher normalises inputs differently; inputs are mapped",
                  logger="current")
        return sp.std / tp.std, (sp.mean - tp.mean) / tp.std

    def teacher_feats(self, inputs: Tensor) -> list[Tensor]:
        """Teacher FPN levels (N, C_t, H_l, W_l) under ``no_grad``."""
        with torch.no_grad():
            if self._renorm is not None:
                scale, shift = (t.to(inputs.device) for t in self._renorm)
                inputs = inputs * scale + shift
            return list(self.teacher.extract_feat(inputs))

    # -- the detector API -----------------------------------------------------------------------
    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        """The student's features."""
        return self.student.extract_feat(batch_inputs)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict[str, Tensor]:
        """Student task losses plus ``loss_exp_low``, ``loss_exp_high`` and
        ``loss_imp_{full,high}_{cls,reg}``."""
        sp = self.strategy.student_pass(self.student, batch_inputs, batch_data_samples)
        feats_t = self.teacher_feats(batch_inputs)
        if len(sp.feats) != len(feats_t):
            raise ValueError(f"SpectralDistiller: student gave {len(sp.feats)} FPN levels, "
                             f"teacher {len(feats_t)}")
        adapted = align_to(self.explicit.adapter(sp.feats), feats_t)
        boxes = [boxes_to_disw_input(s.gt_instances.bboxes)[0] for s in batch_data_samples]
        terms = dict(self.explicit(adapted, feats_t, boxes, tuple(batch_inputs.shape[-2:])))
        # published: the amplifiers read the raw student maps; the adapter is the explicit
        # stream's. Maps on other grids than the teacher's are resized to them.
        feats_amp = align_to(sp.feats, feats_t) if self.amplifier_reads_raw else adapted
        for amp in self.amplifiers:
            weight = float(self.distill_cfg["amplifiers"][amp.name])
            with torch.no_grad():
                inputs_t = amp.inputs(feats_t)
            kd = self.strategy.kd_losses(amp.head, amp.inputs(feats_amp), inputs_t,
                                         batch_data_samples, sp, self.kd_cls, self.kd_reg)
            for key, value in kd.items():
                terms[f"loss_imp_{amp.name}_{key}"] = weight * value
        losses = dict(sp.losses)
        losses.update(self.check_finite(terms))
        return losses

    def check_finite(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raise on (or drop, per ``distill_cfg.nonfinite``) non-finite terms; one host sync."""
        if not terms:
            return terms
        finite = torch.isfinite(torch.stack([t.detach().float() for t in terms.values()]))
        if bool(finite.all()):
            return terms
        bad = [k for k, ok in zip(terms, finite.tolist(), strict=True) if not ok]
        if self.distill_cfg["nonfinite"] == "raise":
            raise FloatingPointError(f"SpectralDistiller: non-finite distillation loss {bad}; "
                                     "set distill_cfg.nonfinite='skip' to drop such terms")
        print_log(f"SpectralDistiller: dropped non-finite terms {bad} this iteration",
                  logger="current", level=30)
        return {k: (v if k not in bad else v.new_zeros(())) for k, v in terms.items()}

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """The student's predictions."""
        return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList | None = None):
        """The student's raw head outputs."""
        return self.student._forward(batch_inputs, batch_data_samples)


__all__ = ["Amplifier", "SpectralDistiller", "merge_distill_cfg"]
