"""Export a fine-tuned SAM3 image model as a ``sam3.pt``-compatible file, and load it back.

Key layout of the written file (that of SAM3's released ``sam3.pt``, which sam3's own
``model_builder._load_checkpoint`` reads)::

    {"model": {
        "detector.<Sam3Image key>": tensor,  # every image-model weight, e.g.
                                             #   detector.backbone.vision_backbone.trunk.blocks.0.*
        "tracker.<tracker key>": tensor,     # the SAM1-style instance predictor's model
                                             #   (Sam3Image: inst_interactive_predictor.model.*)
        "detector.backbone.vision_backbone.spectral_adapter.*": tensor,  # the adapter, if any
     },
     "ds2d2_spectral_adapter": {...}}        # how to rebuild the adapter (ADAPTER_META_KEY)

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ...models.backbones.sam3_trunk import (
    read_sam3_checkpoint,
    read_sam3_file,
    state_under_marker,
)
from ...models.detectors.sam3_prompted.build import (
    SAM3_DETECTOR_PREFIX,
    build_sam3_image_model,
    sam3_image_state_from_checkpoint,
)
from ...models.detectors.sam3_prompted.policy import ADAPTER_PREFIX, insert_spectral_adapter
from ...utils.checkpoint import check_state_fits
from ...utils.errors import CheckpointError
from ...utils.io import atomic_torch_save

__all__ = [
    "ADAPTER_META_KEY",
    "ExportSummary",
    "SAM3_TRACKER_PREFIX",
    "adapter_description",
    "export_from_training_checkpoint",
    "export_sam3_image_model",
    "image_state_from_training_checkpoint",
    "image_state_to_sam3",
    "load_exported_state",
    "load_finetuned_sam3",
    "load_sam3_with_adapter",
    "read_adapter_meta",
]

#: Key prefix of the tracker (the instance predictor's model) inside ``sam3.pt``.
SAM3_TRACKER_PREFIX = "tracker."
#: Where ``Sam3Image`` holds the tracker of its instance predictor.
INST_PREDICTOR_PREFIX = "inst_interactive_predictor.model."
#: Top-level entry of an exported file describing the adapter: ``{"format": 1, "prefix":
#: <Sam3Image key prefix of the adapter>, "config": <adapter keyword arguments>, "arch": <the
#: model's size dict>, "identity": <bool, gamma == 0>}``. sam3's loader ignores it.
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
    return state_under_marker(
        path, IMAGE_MODEL_MARKER, "SAM3 image model",
        "Give the .pth written by tools/train.py for the SAM3 model.", prefix,
        candidates=f"key prefixes holding {IMAGE_MODEL_MARKER!r}",
        advice="pass its prefix explicitly",
    )  # fmt: skip


@dataclass
class ExportSummary:
    """What :func:`export_sam3_image_model` wrote.

    Attributes:
        path: The output file.
        written: Model tensors written (adapter included).
        kept_from_base: Keys of the base file the model does not hold, and RoPE tables of a
            model built for another ``img_size`` (left as they were).
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
                f"without it, ds2d2_mm.apis.sam3.export_full.load_sam3_with_adapter with it"
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
        adapter: :func:`adapter_description` of the model (``{"prefix", "config", "arch"}``),
            stored under :data:`ADAPTER_META_KEY`; ``None`` reads it off ``state`` (without the
            arch).
        force: Overwrite ``out``.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is false.
        CheckpointError: ``base`` missing or unreadable, or a model key (other than the
            adapter's) that ``base`` lacks or holds with another shape.
    """
    if os.path.exists(out) and not force:
        raise FileExistsError(f"{out!r} exists; pass --force to overwrite it")
    if adapter is None:
        adapter = adapter_description(state)
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
        # RoPE tables are computed from img_size, not learned: a model fine-tuned at another
        # size keeps the base's (those sam3 builds at its own size)
        rope = [k for k, v in mapped.items()
                if k.endswith("freqs_cis") and k in inner and v.shape != inner[k].shape]
        for key in rope:
            del mapped[key]
        summary.written = len(mapped)
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
            "arch": adapter.get("arch"),
            "identity": summary.adapter_identity,
        }
    atomic_torch_save(payload, out, force=force)
    return summary


def _read_raw(path: str) -> Mapping[str, Any]:
    """The top level of a SAM3 checkpoint file (tensors memory-mapped)."""
    return read_sam3_file(path, missing=f"base SAM3 checkpoint not found: {path!r}")


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


#: Parts of a ``sam3.pt`` that an image model built without instance interactivity lacks:
#: sam3's loader skips them, so do these loaders.
_NOT_BUILT_WITHOUT_INSTANCE = ("backbone.vision_backbone.sam2_convs.",)


def _load_checked(
    model: nn.Module, state: Mapping[str, Tensor], title: str, may_miss: tuple[str, ...] = ()
) -> list[str]:
    """Load ``state`` into ``model``: every key of ``state`` must fit; model keys starting with
    one of ``may_miss`` may be absent (they keep their values). Returns those absent keys."""
    own = model.state_dict()
    with_tracker = getattr(model, "inst_interactive_predictor", None) is not None
    not_built = () if with_tracker else _NOT_BUILT_WITHOUT_INSTANCE
    state = {k: v for k, v in state.items() if k in own or not k.startswith(not_built)}
    check_state_fits(
        own, state, title,
        "Build with the arch / img_size / enable_inst_interactivity the file was written for.",
        optional=lambda k: k.startswith(may_miss) if may_miss else False,
    )
    model.load_state_dict(state, strict=False)
    return sorted(k for k in own if k not in state)


def load_exported_state(model: nn.Module, path: str) -> None:
    """Load every image-model key of the exported file ``path`` into ``model``, strictly.

    The key mapping is sam3's (``model_builder._load_checkpoint``); keys of the file that the
    model does not build (the neck's SAM2 branch, the tracker, without instance interactivity)
    are skipped as sam3 skips them.

    Raises:
        CheckpointError: a model key missing from the file, a file key the model lacks, or a
            shape mismatch; the message names the file and the keys.
    """
    with_tracker = getattr(model, "inst_interactive_predictor", None) is not None
    state = sam3_image_state_from_checkpoint(read_sam3_checkpoint(path), with_tracker)
    _load_checked(model, state, f"SAM3 checkpoint {path!r} does not fit the model built for it")


def _adapter_config_from_state(state: Mapping[str, Tensor]) -> dict[str, Any] | None:
    """The adapter's keyword arguments read off its weights (``None`` without adapter keys)."""
    key = f"{ADAPTER_PREFIX}.low.reduce.weight"
    if key not in state:
        return None
    return {"hidden_channels": int(state[key].shape[0])}


def adapter_description(
    state: Mapping[str, Tensor], arch: str | Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """``{"prefix", "config", "arch"}`` of the adapter in a ``Sam3Image`` state (``None`` without
    one): what :func:`export_sam3_image_model` stores and :func:`load_sam3_with_adapter` reads.

    Args:
        state: The image model's state dict.
        arch: The model's size (a preset name or ``model.arch_cfg``), stored for the loader.
    """
    config = _adapter_config_from_state(state)
    if config is None:
        return None
    arch = dict(arch) if isinstance(arch, Mapping) else arch
    return {"prefix": f"{ADAPTER_PREFIX}.", "config": config, "arch": arch}


def export_from_training_checkpoint(
    checkpoint: str,
    out: str,
    base: str | None = None,
    prefix: str | None = None,
    arch: str | Mapping[str, Any] | None = None,
    force: bool = False,
) -> ExportSummary:
    """Export the ``Sam3Image`` (and adapter) of an mmengine training checkpoint.

    Args:
        checkpoint: Training checkpoint of a detector holding a ``Sam3Image`` (e.g.
            ``Sam3PromptedDetector``, whose image model sits under ``sam3.``).
        out: Output file (``sam3.pt`` layout); refused if it exists and ``force`` is false.
        base: The original ``sam3.pt`` the model was fine-tuned from (recommended).
        prefix: Key prefix of the image model in ``checkpoint`` (``None``: found).
        arch: The model's size, stored with the adapter description for the loader.
        force: Overwrite ``out``.
    """
    if os.path.exists(out) and not force:
        raise FileExistsError(f"{out!r} exists; pass --force to overwrite it")
    state, _ = image_state_from_training_checkpoint(checkpoint, prefix)
    return export_sam3_image_model(state, out, base, adapter_description(state, arch), force)


def load_sam3_with_adapter(
    path: str,
    arch: str | dict | None = None,
    bpe_path: str | None = None,
    enable_inst_interactivity: bool = False,
    img_size: int | None = None,
) -> nn.Module:
    """SAM3's image model with the spectral adapter, loaded whole from an exported file.

    Builds ``Sam3Image``
    (:func:`ds2d2_mm.models.detectors.sam3_prompted.build.build_sam3_image_model`), inserts the
    adapter the file describes (:data:`ADAPTER_META_KEY`; none for a plain ``sam3.pt``) after the
    ViT trunk (read off the adapter's weights in a file without that description), and loads every
    key strictly.

    Args:
        path: A file written by :func:`export_sam3_image_model` (or a plain ``sam3.pt``).
        arch: SAM3 size; ``None`` takes the one stored in the file, else ``"sam3"``.
        bpe_path: CLIP's BPE vocabulary (see :func:`resolve_bpe_path`).
        enable_inst_interactivity: Build SAM3's SAM1-style instance predictor too (the file
            must then hold the tracker's weights: export with ``base``).
        img_size: Input side; ``None``: the arch's.

    Returns:
        The model in eval mode, on the CPU.

    Raises:
        CheckpointError: unreadable file, or keys / shapes that do not fit (named).
    """
    meta = read_adapter_meta(path)
    if arch is None:
        arch = (meta or {}).get("arch") or "sam3"
    model = build_sam3_image_model(
        arch, bpe_path, None, enable_inst_interactivity=enable_inst_interactivity,
        img_size=img_size,
    )
    config = meta["config"] if meta else _adapter_config_from_state(
        sam3_image_state_from_checkpoint(read_sam3_checkpoint(path))
    )
    if config is not None:
        insert_spectral_adapter(model, **config)
    load_exported_state(model, path)
    return model.eval()


def load_finetuned_sam3(
    path: str,
    original: str | None,
    arch: str | dict = "sam3",
    bpe_path: str | None = None,
    enable_inst_interactivity: bool = False,
    img_size: int | None = None,
    exported: bool = False,
    prefix: str | None = None,
) -> tuple[nn.Module, list[str]]:
    """The fine-tuned image model, from a training checkpoint or an exported file.

    The model is built and loaded from the ORIGINAL ``sam3.pt`` first, so the weights the
    fine-tuned file does not hold (the tracker and the neck's SAM2 branch of the instance
    predictor, which the detector does not train) are the original's; an adapter is inserted
    when the fine-tuned weights have one; then every fine-tuned key is loaded and must fit.

    Args:
        path: mmengine checkpoint of a detector holding a ``Sam3Image`` (e.g.
            ``Sam3PromptedDetector``), or with ``exported`` a file of ``sam3.pt``'s layout.
        original: The original ``sam3.pt`` (``None``: random init for what ``path`` lacks).
        arch, bpe_path, enable_inst_interactivity, img_size: As for
            :func:`ds2d2_mm.models.detectors.sam3_prompted.build.build_sam3_image_model`.
        exported: ``path`` is in ``sam3.pt``'s layout (:func:`export_sam3_image_model`).
        prefix: Key prefix of the image model in a training checkpoint (``None``: found).

    Returns:
        The model in eval mode on the CPU, and the model keys taken from ``original`` (absent
        from ``path``).

    Raises:
        CheckpointError: unreadable files, or fine-tuned keys that do not fit (named).
    """
    with_tracker = enable_inst_interactivity
    if exported:
        state = sam3_image_state_from_checkpoint(read_sam3_checkpoint(path), with_tracker)
        meta = read_adapter_meta(path)
        config = meta["config"] if meta else _adapter_config_from_state(state)
    else:
        state, _ = image_state_from_training_checkpoint(path, prefix)
        config = _adapter_config_from_state(state)
    model = build_sam3_image_model(
        arch, bpe_path, original, enable_inst_interactivity=enable_inst_interactivity,
        img_size=img_size,
    )
    if config is not None:
        insert_spectral_adapter(model, **config)
    from_original = (INST_PREDICTOR_PREFIX, *_NOT_BUILT_WITHOUT_INSTANCE)
    taken = _load_checked(
        model, state, f"fine-tuned SAM3 weights {path!r} do not fit the model built for them",
        may_miss=from_original,
    )
    return model.eval(), taken
