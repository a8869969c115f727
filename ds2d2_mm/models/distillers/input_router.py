"""What the teacher and the student read of a batch: the input router of a distiller.

One modality: both read the whole batch, the teacher mapped to its own normalisation where its
data preprocessor normalises otherwise than the distiller's (e.g. a SAM3 teacher).

Cross-modal distillation (an extension): a paired batch ``(N, C_total, H, W)`` stacks modalities
along channels (``LoadPairedImages``), normalised per modality by
``MultiBandDetDataPreprocessor(modalities=...)``, whose ``modality_channels`` gives each modality's
``(start, end)``. With ``distill_cfg.teacher_input`` and ``student_input`` set, :class:`InputRouter`
hands the teacher its modality's channels and the student its own (task loss, DISW and amplifiers
use the one set of boxes), and checks, when the distiller is built, that each model's own
preprocessor agrees with the paired one:

* the student's must normalise its modality exactly as the paired preprocessor does (after
  export the student runs alone behind its own preprocessor);
* the teacher's may normalise differently (the distiller maps the inputs, as for single-modality
  teachers), but must read the modality's channel count in the same channel order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from ...utils.errors import ConfigError
from .distill_cfg import check_modality_keys

__all__ = ["InputRouter", "build_input_router", "first_conv_channels"]


def first_conv_channels(detector: nn.Module) -> int | None:
    """Input channels of the first ``Conv2d`` of ``detector.backbone`` (``None``: none found)."""
    backbone = getattr(detector, "backbone", None)
    if backbone is None:
        return None
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels)
    return None


def _normalisation(pre: nn.Module) -> tuple[Tensor | None, Tensor | None, bool]:
    """``(mean, std, swaps_bgr)`` of a data preprocessor; mean/std ``(C, 1, 1)`` or ``None``."""
    if not getattr(pre, "_enable_normalize", False):
        return None, None, bool(getattr(pre, "_channel_conversion", False))
    return pre.mean.float(), pre.std.float(), bool(getattr(pre, "_channel_conversion", False))


@dataclass
class InputRouter:
    """What the teacher and the student read of a batch ``(N, C, H, W)``.

    Single modality (``teacher`` and ``student`` unset): both read the whole batch; the teacher
    through ``renorm`` when its preprocessor normalises otherwise than the student's (e.g. SAM3's
    [-1, 1] against ImageNet statistics). Cross-modal: each reads its modality's channels, the
    teacher in its own normalisation.

    Attributes:
        teacher: ``(start, end)`` channels of ``distill_cfg.teacher_input`` (``None``: all).
        student: ``(start, end)`` channels of ``distill_cfg.student_input`` (``None``: all).
        total: Channels of a paired batch (``None``: single modality, not checked).
        names: ``(teacher_input, student_input)`` (``None``: single modality).
        renorm: ``(scale, shift)`` ``(C_t, 1, 1)`` so that ``x * scale + shift`` is the teacher's
            normalisation of what it reads, or ``None`` when no mapping is needed.
    """

    teacher: tuple[int, int] | None = None
    student: tuple[int, int] | None = None
    total: int | None = None
    names: tuple[str, str] | None = None
    renorm: tuple[Tensor, Tensor] | None = None

    @property
    def cross_modal(self) -> bool:
        """Whether teacher and student read different modalities of a paired batch."""
        return self.names is not None

    def _check(self, inputs: Tensor) -> None:
        if self.total is not None and inputs.shape[1] != self.total:
            raise ConfigError(
                f"cross-modal distillation ({self.names[0]} -> {self.names[1]}): the batch has "
                f"{inputs.shape[1]} channels but the paired layout has {self.total}; load every "
                "modality with LoadPairedImages")

    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        """``(N, C_t, H, W)``: what the teacher reads, in the teacher's normalisation."""
        self._check(inputs)
        out = inputs if self.teacher is None else inputs[:, self.teacher[0]:self.teacher[1]]
        if self.renorm is not None:
            scale, shift = (t.to(inputs.device, inputs.dtype) for t in self.renorm)
            out = out * scale + shift
        return out

    def student_inputs(self, inputs: Tensor) -> Tensor:
        """``(N, C_s, H, W)``: what the student reads (all of it, or its modality)."""
        self._check(inputs)
        return inputs if self.student is None else inputs[:, self.student[0]:self.student[1]]


def _same_normalisation(pre_a: nn.Module, pre_b: nn.Module) -> tuple[Tensor, Tensor] | None:
    """(scale, shift) mapping ``pre_a``-normalised inputs to ``pre_b``'s normalisation, or
    ``None`` when both normalise alike (or one does not normalise)."""
    enabled = [getattr(p, "_enable_normalize", False) for p in (pre_a, pre_b)]
    if not all(enabled):
        return None
    if pre_a.mean.shape != pre_b.mean.shape:
        raise ConfigError(
            f"SpectralDistiller: the student's preprocessor normalises {pre_a.mean.shape[0]} "
            f"bands, the teacher's {pre_b.mean.shape[0]}; student and teacher must read the "
            "same bands (give both the same MultiBandDetDataPreprocessor mean/std)")
    if torch.equal(pre_a.mean, pre_b.mean) and torch.equal(pre_a.std, pre_b.std):
        return None
    print_log("SpectralDistiller: teacher normalises inputs differently; inputs are mapped",
              logger="current")
    return pre_a.std / pre_b.std, (pre_a.mean - pre_b.mean) / pre_b.std


def _slice_norm(pre: nn.Module, span: tuple[int, int]) -> tuple[Tensor, Tensor, bool]:
    """Mean/std ``(C, 1, 1)`` of the paired preprocessor's channels ``span`` and whether those
    channels were swapped BGR to RGB."""
    order = getattr(pre, "_order", None) or list(range(int(pre.mean.shape[0])))
    start, end = span
    swapped = order[start:end] != list(range(start, end))
    return pre.mean[start:end].float(), pre.std[start:end].float(), swapped


def build_input_router(distill_cfg: dict, paired: nn.Module, teacher: nn.Module,
                       student: nn.Module) -> InputRouter:
    """The input router of a distiller.

    Without ``teacher_input`` / ``student_input`` both read the whole batch and the teacher's
    inputs are mapped to its own normalisation where it differs from the distiller's
    preprocessor. With them (cross-modal) each reads its modality, and every model's own
    preprocessor is checked against the paired one.

    Args:
        distill_cfg: The merged ``distill_cfg``.
        paired: The distiller's data preprocessor (``MultiBandDetDataPreprocessor(modalities=)``
            for cross-modal distillation).
        teacher: The teacher detector (its own ``data_preprocessor`` and backbone are checked).
        student: The student detector (likewise).

    Raises:
        ConfigError: A preprocessor without modalities, an unknown modality name, a channel
            count or order that a model does not read, or a student preprocessor that
            normalises its modality otherwise than the paired one.
    """
    t_name, s_name = distill_cfg.get("teacher_input"), distill_cfg.get("student_input")
    if t_name is None and s_name is None:
        return InputRouter(renorm=_same_normalisation(paired, teacher.data_preprocessor))
    layout = getattr(paired, "modality_channels", None)
    if not layout:
        raise ConfigError(
            "distill_cfg.teacher_input / student_input need paired inputs: give the "
            "SpectralDistiller a data_preprocessor=dict(type='MultiBandDetDataPreprocessor', "
            "modalities=dict(rgb=dict(mean=..., std=...), ir=dict(mean=..., std=...))) in the "
            f"order of LoadPairedImages (got {type(paired).__name__} without modalities)")
    check_modality_keys(distill_cfg, layout, "the data_preprocessor's modalities")
    spans = {"teacher": layout[t_name], "student": layout[s_name]}
    names = {"teacher": t_name, "student": s_name}
    norms = {}
    for role, model in (("teacher", teacher), ("student", student)):
        start, end = spans[role]
        width = end - start
        reads = first_conv_channels(model)
        if reads is not None and reads != width:
            raise ConfigError(
                f"distill_cfg.{role}_input={names[role]!r}: modality {names[role]!r} has "
                f"{width} channels but the {role}'s backbone reads {reads}; set its "
                f"backbone.in_channels={width} (or pick the modality it was trained on)")
        mean, std, swaps = _normalisation(model.data_preprocessor)
        p_mean, p_std, p_swapped = _slice_norm(paired, spans[role])
        if mean is not None and mean.shape[0] not in (1, width):
            raise ConfigError(
                f"the {role}'s data_preprocessor normalises {mean.shape[0]} channels but its "
                f"modality {names[role]!r} has {width}")
        if width == 3 and swaps != p_swapped:
            raise ConfigError(
                f"the {role}'s data_preprocessor {'swaps' if swaps else 'keeps'} BGR/RGB but "
                f"the paired modalities.{names[role]} {'does' if p_swapped else 'does not'}; "
                f"set modalities.{names[role]}.bgr_to_rgb={swaps} so that the {role} sees the "
                "channel order it was trained with")
        norms[role] = (mean, std, p_mean, p_std)
    mean, std, p_mean, p_std = norms["student"]
    if mean is None or not (torch.allclose(mean.expand_as(p_mean), p_mean)
                            and torch.allclose(std.expand_as(p_std), p_std)):
        theirs = None if mean is None else (mean.flatten().tolist(), std.flatten().tolist())
        raise ConfigError(
            f"the student's own data_preprocessor normalises modality {s_name!r} with "
            f"(mean, std) = {theirs} but the distiller's modalities.{s_name} with "
            f"{(p_mean.flatten().tolist(), p_std.flatten().tolist())}; give them the same "
            "values (the exported student runs alone behind its own preprocessor)")
    mean, std, p_mean, p_std = norms["teacher"]
    renorm = None
    if mean is None:
        renorm = (p_std, p_mean)  # the teacher reads unnormalised values
    elif not (torch.allclose(mean.expand_as(p_mean), p_mean)
              and torch.allclose(std.expand_as(p_std), p_std)):
        renorm = (p_std / std, (p_mean - mean) / std)
    total = int(paired.mean.shape[0])
    return InputRouter(teacher=spans["teacher"], student=spans["student"], total=total,
                       names=(t_name, s_name), renorm=renorm)
