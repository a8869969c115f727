"""Cross-modal distillation: which channels of a paired batch the teacher and the student read.

A paired batch ``(N, C_total, H, W)`` stacks modalities along channels (``LoadPairedImages``),
normalised per modality by ``MultiBandDetDataPreprocessor(modalities=...)``, whose
``modality_channels`` gives each modality's ``(start, end)``. With ``distill_cfg.teacher_input``
and ``student_input`` set, :class:`ModalitySplit` hands the teacher its modality's channels and
the student its own (task loss, DISW and amplifiers use the one set of boxes), and checks, when
the distiller is built, that each model's own preprocessor agrees with the paired one:

* the student's must normalise its modality exactly as the paired preprocessor does (after
  export the student runs alone behind its own preprocessor);
* the teacher's may normalise differently (the distiller maps the inputs, as for single-modality
  teachers), but must read the modality's channel count in the same channel order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...utils.errors import ConfigError
from .distill_cfg import check_modality_keys

__all__ = ["ModalitySplit", "build_modality_split", "first_conv_channels"]


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
class ModalitySplit:
    """Channel ranges of the teacher's and the student's modalities in a paired batch, and the
    affine map from the paired normalisation to the teacher's own.

    Attributes:
        teacher: ``(start, end)`` channels of ``distill_cfg.teacher_input``.
        student: ``(start, end)`` channels of ``distill_cfg.student_input``.
        total: Channels of a paired batch.
        names: ``(teacher_input, student_input)``.
        renorm: ``(scale, shift)`` ``(C_t, 1, 1)`` so that ``x * scale + shift`` is the teacher's
            normalisation of its channels, or ``None`` when it is the paired one.
    """

    teacher: tuple[int, int]
    student: tuple[int, int]
    total: int
    names: tuple[str, str]
    renorm: tuple[Tensor, Tensor] | None = None

    def _check(self, inputs: Tensor) -> None:
        if inputs.shape[1] != self.total:
            raise ConfigError(
                f"cross-modal distillation ({self.names[0]} -> {self.names[1]}): the batch has "
                f"{inputs.shape[1]} channels but the paired layout has {self.total}; load every "
                "modality with LoadPairedImages")

    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        """``(N, C_t, H, W)``: the teacher's modality, in the teacher's normalisation."""
        self._check(inputs)
        out = inputs[:, self.teacher[0]:self.teacher[1]]
        if self.renorm is not None:
            scale, shift = (t.to(inputs.device, inputs.dtype) for t in self.renorm)
            out = out * scale + shift
        return out

    def student_inputs(self, inputs: Tensor) -> Tensor:
        """``(N, C_s, H, W)``: the student's modality."""
        self._check(inputs)
        return inputs[:, self.student[0]:self.student[1]]


def _slice_norm(pre: nn.Module, span: tuple[int, int]) -> tuple[Tensor, Tensor, bool]:
    """Mean/std ``(C, 1, 1)`` of the paired preprocessor's channels ``span`` and whether those
    channels were swapped BGR to RGB."""
    order = getattr(pre, "_order", None) or list(range(int(pre.mean.shape[0])))
    start, end = span
    swapped = order[start:end] != list(range(start, end))
    return pre.mean[start:end].float(), pre.std[start:end].float(), swapped


def build_modality_split(distill_cfg: dict, paired: nn.Module, teacher: nn.Module,
                         student: nn.Module) -> ModalitySplit | None:
    """The split of a cross-modal distiller, or ``None`` when ``teacher_input`` /
    ``student_input`` are unset (single modality: nothing is sliced).

    Args:
        distill_cfg: The merged ``distill_cfg``.
        paired: The distiller's data preprocessor (``MultiBandDetDataPreprocessor(modalities=)``).
        teacher: The teacher detector (its own ``data_preprocessor`` and backbone are checked).
        student: The student detector (likewise).

    Raises:
        ConfigError: A preprocessor without modalities, an unknown modality name, a channel
            count or order that a model does not read, or a student preprocessor that
            normalises its modality otherwise than the paired one.
    """
    t_name, s_name = distill_cfg.get("teacher_input"), distill_cfg.get("student_input")
    if t_name is None and s_name is None:
        return None
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
    return ModalitySplit(teacher=spans["teacher"], student=spans["student"], total=total,
                         names=(t_name, s_name), renorm=renorm)
