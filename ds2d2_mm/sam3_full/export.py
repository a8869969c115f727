"""Export a fine-tuned SAM3 image model as a ``sam3.pt``-compatible file, and load it back.

Key layout of the written file (that of SAM3's released ``sam3.pt``, which sam3's own
``model_builder._load_checkpoint`` reads)::

    {"model": {
        "detector.<Sam3Image key>":  tensor,   # every image-model weight, e.g.
                                               #   detector.backbone.vision_backbone.trunk.blocks.0...
        "tracker.<tracker key>":     tensor,   # the SAM1-style instance predictor's model
                                               #   (Sam3Image key inst_interactive_predictor.model.*)
        "detector.<adapter path>.*": tensor,   # the spectral adapter, if the model has one
     },
     "ds2d2_spectral_adapter": {...}}          # how to rebuild the adapter (see ADAPTER_META_KEY)

sam3's loader keeps the keys holding ``"detector"`` (``"detector."`` removed) and, with instance
interactivity, those holding ``"tracker"`` (mapped to ``inst_interactive_predictor.model.``), and
loads them with ``strict=False``; extra top-level entries besides ``"model"`` are ignored.

With ``base`` (the original ``sam3.pt``, recommended) the output is the base file with every
weight the model has replaced: the same keys, shapes, dtypes and top-level layout, plus the
adapter's keys. Weights the image model does not hold (the video tracker's when the model was
built without instance interactivity, the neck's SAM2 branch) keep the base's values.

The spectral adapter is a nonlinear residual branch (LayerNorm and GELU inside,
``y = x + gamma * idwt(f(dwt(x)))``), so it cannot be folded into the ViT's linear weights; only
``gamma = 0`` makes it the identity. Its keys are written under ``detector.`` + its path in the
model, so:

- plain sam3 (``build_sam3_image_model(checkpoint_path=...)`` of sam3) builds the ORIGINAL
  architecture and loads every fine-tuned weight; the adapter's keys are its only unexpected keys
  (ignored by sam3's ``strict=False`` load) and nothing is missing. A user gets the fine-tuned
  model WITHOUT the adapter, which equals the fine-tuned model only where the adapter is the
  identity (``gamma = 0``, reported by :func:`export_sam3_image_model`);
- :func:`load_sam3_with_adapter` builds the model, inserts the adapter described by the file and
  loads every key strictly: the fine-tuned model exactly.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..backbones.sam3_trunk import read_sam3_checkpoint
from ..checkpoint import CheckpointError, allow_mmengine_checkpoints, read_state_dict
from ..datasets.io import TMP_PREFIX, TMP_SUFFIX
from .build import SAM3_DETECTOR_PREFIX, sam3_image_state_from_checkpoint

__all__ = [
    "ADAPTER_META_KEY",
    "ExportSummary",
    "SAM3_TRACKER_PREFIX",
    "atomic_torch_save",
    "export_sam3_image_model",
    "image_state_from_training_checkpoint",
    "image_state_to_sam3",
]

#: Key prefix of the tracker (the instance predictor's model) inside ``sam3.pt``.
SAM3_TRACKER_PREFIX = "tracker."
#: Where ``Sam3Image`` holds the tracker of its instance predictor.
INST_PREDICTOR_PREFIX = "inst_interactive_predictor.model."
#: Top-level entry of an exported file describing the adapter: ``{"format": 1, "prefix":
#: <Sam3Image key prefix of the adapter>, "config": <adapter keyword arguments>,
#: "identity": <bool, gamma == 0>}``. sam3's loader ignores it.
ADAPTER_META_KEY = "ds2d2_spectral_adapter"
ADAPTER_META_FORMAT = 1
#: A key every ``Sam3Image`` state has, used to find the image model inside a training checkpoint.
IMAGE_MODEL_MARKER = "backbone.vision_backbone.trunk.patch_embed.proj.weight"


def image_state_to_sam3(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A ``Sam3Image`` state dict in ``sam3.pt``'s layout (the inverse of sam3's key mapping).

    ``inst_interactive_predictor.model.*`` becomes ``tracker.*``, every other key gets
    ``detector.``. Tensors are detached copies.

    Raises:
        CheckpointError: a key that sam3's loader would not map back to itself (it holds
            ``"detector."`` or ``"tracker"`` inside, which sam3's ``str.replace`` rules rewrite).
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(INST_PREDICTOR_PREFIX):
            out[SAM3_TRACKER_PREFIX + key[len(INST_PREDICTOR_PREFIX):]] = value.detach().clone()
        else:
            out[SAM3_DETECTOR_PREFIX + key] = value.detach().clone()
    with_tracker = any(k.startswith(INST_PREDICTOR_PREFIX) for k in state)
    back = sam3_image_state_from_checkpoint(out, with_tracker=with_tracker)
    broken = sorted(set(state) ^ set(back))
    if broken:
        raise CheckpointError(
            f"these model keys would not survive sam3's checkpoint key mapping (they contain "
            f"'detector.' or 'tracker' inside): {broken[:8]}"
        )
    return out


def image_state_from_training_checkpoint(
    path: str, prefix: str | None = None
) -> tuple[dict[str, Tensor], str]:
    """The ``Sam3Image`` weights inside an mmengine checkpoint of a detector that holds one.

    Args:
        path: Training checkpoint (``.pth`` written by mmengine).
        prefix: Key prefix of the image model, e.g. ``"sam3."``; ``None`` finds it (the one
            prefix under which :data:`IMAGE_MODEL_MARKER` is stored).

    Returns:
        The image-model state (prefix removed) and the prefix.

    Raises:
        CheckpointError: missing file, no SAM3 image model, or several and no ``prefix``.
    """
    state = read_state_dict(
        path, "training checkpoint", "Give the .pth written by tools/train.py for the SAM3 model."
    )
    if prefix is None:
        found = sorted(k[: -len(IMAGE_MODEL_MARKER)] for k in state if k.endswith(IMAGE_MODEL_MARKER))
        if len(found) != 1:
            raise CheckpointError(
                f"{path!r}: cannot tell where the SAM3 image model is (key prefixes holding "
                f"{IMAGE_MODEL_MARKER!r}: {found or 'none'}); pass its prefix explicitly"
            )
        prefix = found[0]
    image = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if IMAGE_MODEL_MARKER not in image:
        raise CheckpointError(f"{path!r} holds no SAM3 image model under the key prefix {prefix!r}")
    return image, prefix


def atomic_torch_save(obj: Any, path: str, force: bool = False) -> None:
    """``torch.save(obj, path)`` through a temporary file in the same folder and ``os.replace``.

    The temporary file follows :mod:`ds2d2_mm.datasets.io`'s naming, so
    ``remove_stale_temporaries`` clears what an interrupted run left.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
    """
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path!r} exists; pass force=True (--force) to overwrite it")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{TMP_PREFIX}{os.path.basename(path)}.", suffix=TMP_SUFFIX, dir=folder
    )
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class ExportSummary:
    """What :func:`export_sam3_image_model` wrote.

    Attributes:
        path: The output file.
        written: Model tensors written (adapter included).
        kept_from_base: Keys of the base file the model does not hold (left as they were).
        adapter_keys: The adapter's keys in the file (``detector.`` + path).
        adapter_identity: Whether the adapter is the identity (``gamma == 0``): then plain sam3
            loading the file gives exactly the fine-tuned model.
    """

    path: str
    written: int
    kept_from_base: list[str] = field(default_factory=list)
    adapter_keys: list[str] = field(default_factory=list)
    adapter_identity: bool | None = None

    def describe(self) -> str:
        """A few lines for the command line."""
        lines = [f"wrote {self.written} SAM3 tensors to {self.path}"]
        if self.kept_from_base:
            lines.append(f"  {len(self.kept_from_base)} keys kept from the base file")
        if self.adapter_keys:
            state = "the identity (gamma = 0)" if self.adapter_identity else "not the identity"
            lines.append(
                f"  spectral adapter: {len(self.adapter_keys)} keys under "
                f"{_common_prefix(self.adapter_keys)!r}, {state}; plain sam3 loads the file "
                f"without it, ds2d2_mm.sam3_full.export.load_sam3_with_adapter with it"
            )
        return "\n".join(lines)


def _common_prefix(keys: list[str]) -> str:
    prefix = os.path.commonprefix(keys)
    return prefix[: prefix.rfind(".") + 1] if "." in prefix else prefix


def _adapter_identity(state: Mapping[str, Tensor], prefix: str) -> bool:
    gammas = [v for k, v in state.items() if k.startswith(prefix) and re.search(r"gamma$", k)]
    return bool(gammas) and all(bool((g == 0).all()) for g in gammas)


def export_sam3_image_model(
    state: Mapping[str, Tensor],
    out: str,
    base: str | None = None,
    adapter: Mapping[str, Any] | None = None,
    force: bool = False,
) -> ExportSummary:
    """Write the ``Sam3Image`` state ``state`` as a ``sam3.pt``-compatible file at ``out``.

    Args:
        state: The image model's state dict (adapter keys included, at their module path).
        out: Output file; refused if it exists and ``force`` is false.
        base: The original ``sam3.pt``: its keys are kept and the model's replace them.
        adapter: ``{"prefix": <Sam3Image key prefix of the adapter>, "config": {...}}`` when the
            model has a spectral adapter; stored under :data:`ADAPTER_META_KEY`.
        force: Overwrite ``out``.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is false.
        CheckpointError: ``base`` missing or unreadable, or a model key (other than the
            adapter's) that ``base`` lacks or holds with another shape.
    """
    if os.path.exists(out) and not force:
        raise FileExistsError(f"{out!r} exists; pass --force to overwrite it")
    adapter_prefix = adapter["prefix"] if adapter else None
    mapped = image_state_to_sam3(state)
    adapter_keys = sorted(
        SAM3_DETECTOR_PREFIX + k for k in state if adapter_prefix and k.startswith(adapter_prefix)
    )
    summary = ExportSummary(out, len(mapped), adapter_keys=adapter_keys)
    if adapter_prefix:
        if not adapter_keys:
            raise CheckpointError(f"the model state has no adapter keys under {adapter_prefix!r}")
        summary.adapter_identity = _adapter_identity(state, adapter_prefix)
    payload: dict[str, Any]
    if base is None:
        payload = {"model": mapped}
    else:
        raw = _read_raw(base)
        inner_key = "model" if isinstance(raw.get("model"), Mapping) else None
        inner = dict(raw[inner_key]) if inner_key else dict(raw)
        own = set(adapter_keys)
        problems = [k for k in mapped if k not in inner and k not in own]
        problems += [
            f"{k}: model {tuple(v.shape)} vs base {tuple(inner[k].shape)}"
            for k, v in mapped.items()
            if k in inner and torch.is_tensor(inner[k]) and v.shape != inner[k].shape
        ]
        if problems:
            more = f" ({len(problems)} in all)" if len(problems) > 8 else ""
            raise CheckpointError(
                f"the fine-tuned model does not match the base SAM3 checkpoint {base!r}: "
                f"{', '.join(problems[:8])}{more}. Export against the sam3.pt the model was "
                f"fine-tuned from (same arch and img_size)."
            )
        summary.kept_from_base = sorted(
            k for k, v in inner.items() if torch.is_tensor(v) and k not in mapped
        )
        for key, value in mapped.items():
            inner[key] = value.to(inner[key].dtype) if key in inner else value
        payload = {**raw, "model": inner} if inner_key else {"model": inner}
    if adapter:
        payload[ADAPTER_META_KEY] = {
            "format": ADAPTER_META_FORMAT,
            "prefix": adapter_prefix,
            "config": dict(adapter.get("config", {})),
            "identity": summary.adapter_identity,
        }
    atomic_torch_save(payload, out, force=force)
    return summary


def _read_raw(path: str) -> dict[str, Any]:
    """The top level of a SAM3 checkpoint file (tensors memory-mapped)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"base SAM3 checkpoint not found: {path!r}")
    allow_mmengine_checkpoints()
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError variants
        raise CheckpointError(f"SAM3 checkpoint {path!r} could not be loaded: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"SAM3 checkpoint {path!r} holds a {type(raw).__name__}, not a dict")
    return raw


def read_adapter_meta(path: str) -> dict[str, Any] | None:
    """The adapter description of an exported file, or ``None`` (a plain ``sam3.pt``)."""
    meta = _read_raw(path).get(ADAPTER_META_KEY)
    if meta is None:
        return None
    if not isinstance(meta, dict) or meta.get("format") != ADAPTER_META_FORMAT:
        raise CheckpointError(
            f"{path!r}: {ADAPTER_META_KEY!r} is not an adapter description of format "
            f"{ADAPTER_META_FORMAT}: {meta!r}"
        )
    return meta


def load_exported_state(model: nn.Module, path: str) -> None:
    """Load every image-model key of ``path`` into ``model`` strictly (sam3's key mapping).

    Keys of the file the model does not build (the neck's SAM2 branch and the tracker without
    instance interactivity) are skipped, as sam3's own loader skips them.

    Raises:
        CheckpointError: a model key missing from the file, a file key the model lacks that is
            not one of those, or a shape mismatch; the message names the file and the keys.
    """
    with_tracker = getattr(model, "inst_interactive_predictor", None) is not None
    state = sam3_image_state_from_checkpoint(read_sam3_checkpoint(path), with_tracker)
    own = model.state_dict()
    not_built = () if with_tracker else ("backbone.vision_backbone.sam2_convs.",)
    state = {k: v for k, v in state.items() if k in own or not k.startswith(not_built)}
    from ..checkpoint import check_state_fits

    check_state_fits(
        own, state, f"SAM3 checkpoint {path!r} does not fit the model built for it",
        "Build with the arch / img_size / enable_inst_interactivity the file was exported with.",
    )
    model.load_state_dict(state, strict=True)
