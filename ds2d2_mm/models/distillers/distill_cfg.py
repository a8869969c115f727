"""The ``distill_cfg`` of :class:`~ds2d2_mm.models.distillers.spectral_distiller.SpectralDistiller`:
defaults, merging and validation before anything is built.

Everything a user can get wrong in it is refused with :class:`~ds2d2_mm.utils.errors.ConfigError`
naming the dotted key and the value: unknown keys at any depth (checked against the signature of
the class a sub-config builds), negative or non-finite weights, unknown choices.
"""

from __future__ import annotations

import copy
import inspect
import math
from typing import Any

from ...utils.errors import ConfigError

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
    # a prediction-level comparison method in the implicit stream's place (None: DS2D2's
    # amplifiers): dict(type='PredictionKD') or dict(type='CrossKD', reused_teacher_head_idx=3),
    # with the amplifiers off (ds2d2_mm.models.distillers.prediction_kd)
    implicit=None,
    strategy=None,  # None: chosen from the student's structure
    # a NaN or inf in any term (the student's task losses included): "raise" stops naming the
    # terms and the iteration; "skip" names them in the log and skips the whole optimizer step
    # (needs a Guarded*OptimWrapper, which tools/train.py sets; see ds2d2_mm.engine)
    nonfinite="raise",
    # a teacher or amplifier checkpoint whose content differs from the one a checkpoint being
    # loaded (resume, load_from) or the amplifier stage recorded: "refuse" (stop, naming both
    # checksums) or "warn" (tools/train.py --accept-changed-checkpoints)
    checkpoint_changes="refuse",
    # cross-modal distillation (an extension): on paired inputs (LoadPairedImages stacks e.g.
    # RGB and infrared along channels), the modality the teacher reads and the one the student
    # reads, e.g. teacher_input='rgb', student_input='ir'; names of the distiller's
    # MultiBandDetDataPreprocessor(modalities=...). None (both): one modality, no slicing
    teacher_input=None,
    student_input=None,
    # work shared inside one step, every term unchanged: the teacher maps' wavelet bands
    # computed once for the explicit stream and the high-frequency amplifier (same decomposer,
    # fp32 maps), the anchors and recorded label weights (or sampled RoIs) made once for both
    # amplifiers. False: each part computes its own (the straightforward path)
    share_work=True,
    # GPU options, off by default: torch.compile of the frozen amplifier heads and of the KD
    # loss arithmetic; fp16 autocast of the frozen parts (teacher forward, amplifier head
    # passes) with the KD terms in fp32. On a CPU device the first step refuses them clearly
    accelerate=dict(compile=False, frozen_fp16=False),
)

#: Values of the choice keys.
CHOICES = {
    "amplifier_input": ("auto", "raw", "adapted"),
    "nonfinite": ("raise", "skip"),
    "checkpoint_changes": ("refuse", "warn"),
}
#: Keys of ``distill_cfg.accelerate`` (booleans).
ACCELERATE_KEYS = ("compile", "frozen_fp16")
#: Amplifier names of ``distill_cfg.amplifiers``.
AMPLIFIER_NAMES = ("full", "high")
#: Arguments of the explicit stream that the distiller sets itself.
EXPLICIT_SET_BY_DISTILLER = ("student_channels", "teacher_channels", "num_levels")
#: The weight key of mmdet's and mmrotate's losses, checked wherever a sub-config gives it; a
#: class of this project names its own weight arguments in ``weight_keys``.
LOSS_WEIGHT_KEY = "loss_weight"


def unscoped(type_name: str) -> str:
    """A registry name without its scope prefix (``'mmdet.L1Loss'`` -> ``'L1Loss'``)."""
    return type_name.split(".")[-1]


def _check_weight(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key} must be finite and >= 0, got {value!r} (0 disables a term)")


def _registered(type_name: str, key: str) -> Any:
    """The registered class (or function) ``type_name`` of mmdet's ``MODELS``."""
    from mmdet.registry import MODELS

    cls = MODELS.get(type_name)
    if cls is None:
        raise ConfigError(f"{key}.type: {type_name!r} is not a registered model component "
                          "(check the spelling, or import the module that registers it)")
    return cls


def _accepted_args(cls: Any) -> set[str] | None:
    """Keyword arguments of ``cls`` (``None``: any, via **kwargs)."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n in params if n != "self"}


def check_component(key: str, cfg: dict | None, reserved: tuple[str, ...] = ()) -> None:
    """Refuse unknown arguments and bad weights of a sub-config that builds a registered class.

    Args:
        key: Its dotted name, e.g. ``distill_cfg.explicit``.
        cfg: The sub-config (``None`` passes).
        reserved: Arguments the distiller sets itself, which the config must not give.
    """
    if cfg is None:
        return
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise ConfigError(f"{key} must be a dict with a 'type', got {cfg!r}")
    cls = _registered(cfg["type"], key)
    accepted = _accepted_args(cls)
    given = set(cfg) - {"type", "_scope_"}
    clash = given & set(reserved)
    if clash:
        raise ConfigError(f"{key}: {sorted(clash)} are set by the distiller, remove them")
    if accepted is not None:
        unknown = given - accepted
        if unknown:
            choices = sorted(accepted - set(reserved))
            raise ConfigError(f"{key}: unknown keys {sorted(unknown)} for {cfg['type']}; "
                              f"known: {choices}")
    for name in (LOSS_WEIGHT_KEY, *getattr(cls, "weight_keys", ())):
        if name in cfg:
            _check_weight(f"{key}.{name}", cfg[name])


def merge_distill_cfg(cfg: dict | None) -> dict:
    """``DEFAULT_DISTILL_CFG`` updated with ``cfg`` (dicts of the same type one level deep),
    then validated; the KD losses are checked once the strategy has chosen their defaults.

    Raises:
        ConfigError: naming the dotted key and the value at fault.
    """
    out = copy.deepcopy(DEFAULT_DISTILL_CFG)
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(out)
    if unknown:
        raise ConfigError(f"distill_cfg: unknown keys {sorted(unknown)}; known: {sorted(out)}")
    for key, value in cfg.items():
        if isinstance(out[key], dict) and isinstance(value, dict) and unscoped(
                value.get("type", out[key].get("type", ""))) == unscoped(out[key].get("type", "")):
            out[key].update(value)
        else:
            out[key] = copy.deepcopy(dict(value)) if isinstance(value, dict) else value
    for key, choices in CHOICES.items():
        if out[key] not in choices:
            raise ConfigError(f"distill_cfg.{key} must be one of {choices}, got {out[key]!r}")
    amps = out["amplifiers"]
    if not isinstance(amps, dict):
        raise ConfigError(f"distill_cfg.amplifiers must be a dict like {{'full': 1.0, "
                          f"'high': 1.0}}, got {amps!r}")
    unknown = set(amps) - set(AMPLIFIER_NAMES)
    if unknown:
        raise ConfigError(f"distill_cfg.amplifiers: unknown keys {sorted(unknown)}; known: "
                          f"{list(AMPLIFIER_NAMES)} (0 disables one)")
    for name, weight in amps.items():
        _check_weight(f"distill_cfg.amplifiers.{name}", weight)
    _check_accelerate(out)
    check_component("distill_cfg.explicit", out["explicit"], EXPLICIT_SET_BY_DISTILLER)
    check_component("distill_cfg.implicit", out["implicit"])
    if out["implicit"] is not None:
        on = sorted(name for name, weight in amps.items() if weight > 0)
        if on:
            raise ConfigError(
                f"distill_cfg.implicit ({out['implicit']['type']}) takes the amplifiers' place, "
                f"but amplifiers {on} are on; set distill_cfg.amplifiers=dict(full=0, high=0)")
    check_component("distill_cfg.builder", out["builder"], ("full", "high"))
    check_modality_keys(out)
    strategy = out["strategy"]
    if strategy is not None and not isinstance(strategy, (str, dict)):
        raise ConfigError(f"distill_cfg.strategy must be None, a name or a dict, "
                          f"got {strategy!r}")
    return out


def _check_accelerate(cfg: dict) -> None:
    """``share_work`` is a bool; ``accelerate`` a dict of :data:`ACCELERATE_KEYS` booleans."""
    if not isinstance(cfg["share_work"], bool):
        raise ConfigError(f"distill_cfg.share_work must be True or False, "
                          f"got {cfg['share_work']!r}")
    acc = cfg["accelerate"]
    if not isinstance(acc, dict):
        raise ConfigError(f"distill_cfg.accelerate must be a dict like "
                          f"dict(compile=False, frozen_fp16=False), got {acc!r}")
    unknown = set(acc) - set(ACCELERATE_KEYS)
    if unknown:
        raise ConfigError(f"distill_cfg.accelerate: unknown keys {sorted(unknown)}; known: "
                          f"{list(ACCELERATE_KEYS)}")
    for key in ACCELERATE_KEYS:
        if not isinstance(acc.get(key), bool):
            raise ConfigError(f"distill_cfg.accelerate.{key} must be True or False, "
                              f"got {acc.get(key)!r}")


#: The distill_cfg keys that name modalities.
MODALITY_KEYS = ("teacher_input", "student_input")


def check_modality_keys(cfg: dict, modalities: Any = None, where: str = "") -> None:
    """``teacher_input`` / ``student_input`` are both unset or both modality names, and, when
    ``modalities`` (the names a dataset or a preprocessor knows) is given, among them.

    Args:
        cfg: A merged ``distill_cfg``.
        modalities: Known modality names in order, or ``None`` to check the form only.
        where: What knows ``modalities`` (for the message), e.g. ``the data_preprocessor``.

    Raises:
        ConfigError: naming the key, its value and the known modalities.
    """
    given = {key: cfg.get(key) for key in MODALITY_KEYS}
    for key, value in given.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"distill_cfg.{key} must be a modality name such as 'rgb' or "
                              f"'ir', got {value!r}")
    if (given["teacher_input"] is None) != (given["student_input"] is None):
        unset = [k for k, v in given.items() if v is None]
        raise ConfigError(f"distill_cfg: cross-modal distillation needs both teacher_input and "
                          f"student_input; {unset[0]} is not set (given: "
                          f"{ {k: v for k, v in given.items() if v is not None} })")
    if modalities is None or given["teacher_input"] is None:
        return
    known = list(modalities)
    for key, value in given.items():
        if value not in known:
            raise ConfigError(f"distill_cfg.{key}={value!r} is not a modality of {where}: "
                              f"known {known}")


def resolve_kd_cfg(default: dict, given: dict | None) -> dict:
    """``given`` over the strategy's ``default`` KD loss config: ``None`` keeps the default, a
    dict without ``type`` (or with the default's, scope prefix aside) updates it, another type
    replaces it."""
    if given is None:
        return copy.deepcopy(default)
    given = dict(given)
    if unscoped(given.get("type", default["type"])) == unscoped(default["type"]):
        return {**default, **given, "type": default["type"]}
    return copy.deepcopy(given)
