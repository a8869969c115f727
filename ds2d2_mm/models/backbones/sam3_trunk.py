"""SAM3's vision trunk (``sam3.model.vitdet.ViT``): build, load from ``sam3.pt``, run, export.

Facts this module relies on (sam3 0.1.4, ``sam3/model_builder.py::_create_vit_backbone`` and
``sam3/model/vitdet.py``):

- The trunk is a plain ViT-L-like encoder: patch 14, embed 1024, depth 32, 16 heads, MLP ratio
  4.625, windowed attention (window 24) except in the global blocks 7, 15, 23, 31, 2D RoPE with
  interpolation, tiled absolute position embeddings pre-trained at 336 px, ``ln_pre`` and no
  ``ln_post``; 446.2M parameters. It returns a list with one (B, 1024, H/14, W/14) map taken
  after the last global block.
- The global blocks' RoPE tables (the ``freqs_cis`` buffers, complex64) are sized for
  ``img_size`` when the trunk is built, so every input must have exactly ``img_size`` pixels a
  side: :func:`run_trunk` pads smaller inputs and crops the output back. Building for another
  size recomputes the tables; the checkpoint's tables are then dropped at load time.
- Casting the trunk with ``.to(torch.bfloat16)`` / ``.to(torch.float16)`` drops the imaginary
  part of ``freqs_cis`` with only a warning (``.half()`` leaves complex buffers alone in torch
  2.14, but do not rely on it): use autocast (mmengine's ``AmpOptimWrapper``) instead.
  :func:`run_trunk` refuses a trunk whose tables are no longer complex.
- In ``sam3.pt`` the trunk's keys start with :data:`SAM3_TRUNK_PREFIX` (the file may hold them at
  the top level or under ``"model"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from ...utils.checkpoint import allow_mmengine_checkpoints, check_state_fits, read_state_dict
from ...utils.errors import CheckpointError
from .sam3_import import import_vitdet

__all__ = [
    "SAM3_TRUNK_ARCHS",
    "SAM3_TRUNK_PREFIX",
    "build_sam3_trunk",
    "load_sam3_trunk",
    "read_sam3_checkpoint",
    "read_sam3_file",
    "pad_to_trunk",
    "run_trunk",
    "sam3_state_to_trunk",
    "set_trunk_trainable_blocks",
    "state_under_marker",
    "trunk_config",
    "trunk_param_groups",
    "trunk_state_from_training_checkpoint",
    "trunk_to_sam3_state",
]

#: Key prefix of the vision trunk inside SAM3's released checkpoint ``sam3.pt``.
SAM3_TRUNK_PREFIX = "detector.backbone.vision_backbone.trunk."

#: Size presets of the trunk. ``sam3`` is the released model; ``tiny`` exercises the same code
#: (windowed and global blocks, RoPE, tiled position embeddings) in tests on a CPU.
_SAM3_TRUNK: dict[str, Any] = dict(
    img_size=1008, pretrain_img_size=336, patch_size=14, embed_dim=1024, depth=32, num_heads=16,
    mlp_ratio=4.625, window_size=24, global_att_blocks=(7, 15, 23, 31), drop_path_rate=0.1,
)  # fmt: skip
SAM3_TRUNK_ARCHS: dict[str, dict[str, Any]] = {
    "sam3": _SAM3_TRUNK,
    # the released trunk's patch, MLP ratio and drop path at test widths
    "tiny": dict(_SAM3_TRUNK, img_size=112, pretrain_img_size=56, embed_dim=32, depth=4,
                 num_heads=2, window_size=4, global_att_blocks=(1, 3)),
}  # fmt: skip

#: Constructor arguments that are the same for every preset (those of SAM3's own builder).
_FIXED_TRUNK_ARGS: dict[str, Any] = dict(
    norm_layer="LayerNorm", qkv_bias=True, use_abs_pos=True, tile_abs_pos=True, rel_pos_blocks=(),
    use_rope=True, use_interp_rope=True, pretrain_use_cls_token=True, retain_cls_token=False,
    ln_pre=True, ln_post=False, return_interm_layers=False, bias_patch_embed=False,
    compile_mode=None,
)  # fmt: skip

#: RoPE splits each head's channels into (x, y) pairs of complex numbers.
_ROPE_HEAD_DIM_MULTIPLE = 4


def trunk_config(arch: str = "sam3", **overrides: Any) -> dict[str, Any]:
    """The ``ViT`` keyword arguments of preset ``arch`` with ``overrides`` applied, validated.

    Raises:
        ValueError: unknown preset or setting, or a combination the trunk cannot run.
    """
    if arch not in SAM3_TRUNK_ARCHS:
        raise ValueError(
            f"unknown SAM3 trunk arch {arch!r}; choose one of {list(SAM3_TRUNK_ARCHS)}"
        )
    cfg = {**SAM3_TRUNK_ARCHS[arch], **_FIXED_TRUNK_ARGS, **overrides}
    img, patch, depth = cfg["img_size"], cfg["patch_size"], cfg["depth"]
    if img % patch:
        raise ValueError(f"SAM3 trunk img_size={img} must be a multiple of patch_size={patch}")
    head_dim = cfg["embed_dim"] // cfg["num_heads"]
    if cfg["embed_dim"] % cfg["num_heads"] or head_dim % _ROPE_HEAD_DIM_MULTIPLE:
        raise ValueError(
            f"SAM3 trunk embed_dim={cfg['embed_dim']} / num_heads={cfg['num_heads']} must give a "
            f"head dim divisible by {_ROPE_HEAD_DIM_MULTIPLE} (2D RoPE)"
        )
    globals_ = tuple(cfg["global_att_blocks"])
    if not globals_ or globals_[-1] != depth - 1 or any(not 0 <= b < depth for b in globals_):
        raise ValueError(
            f"SAM3 trunk global_att_blocks={globals_} must lie in [0, depth={depth}) and end with "
            f"the last block ({depth - 1}): the output is taken after the last global block"
        )
    cfg["global_att_blocks"] = globals_
    return cfg


def build_sam3_trunk(
    arch: str = "sam3", use_act_checkpoint: bool | None = True, **overrides: Any
) -> nn.Module:
    """Build a randomly initialised ``sam3.model.vitdet.ViT`` (sam3 is imported here, lazily).

    Args:
        arch: Size preset, a key of :data:`SAM3_TRUNK_ARCHS`.
        use_act_checkpoint: Stored on the trunk (``trunk.use_act_checkpoint``); :func:`run_trunk`
            applies it to the blocks that receive gradients. ``None`` leaves it to ``ViT``'s
            default, as sam3's own builder does.
        **overrides: Any ``ViT`` argument, e.g. ``img_size=672`` or ``drop_path_rate=0.0``.
    """
    cfg = trunk_config(arch, **overrides)
    if use_act_checkpoint is not None:
        cfg["use_act_checkpoint"] = use_act_checkpoint
    vitdet = import_vitdet()
    return vitdet.ViT(**cfg)


def read_sam3_file(path: str, missing: str | None = None) -> Mapping[str, Any]:
    """The top level of a SAM3 checkpoint file, as saved (tensors memory-mapped).

    Args:
        path: The file (SAM3's ``sam3.pt``, or a file of its layout).
        missing: The message when the file does not exist (default: what to give instead).

    Raises:
        CheckpointError: the file is missing, cannot be read, or holds no dict; the message
            names it.
    """
    if not path or not os.path.isfile(path):
        raise CheckpointError(missing or (
            f"SAM3 checkpoint not found: {path!r}. Give the local path of SAM3's released "
            f"sam3.pt (or of a trunk exported by tools/export_sam3_trunk.py) in the config "
            f"(model.backbone.checkpoint); weights are never downloaded."))
    allow_mmengine_checkpoints()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError variants
        raise CheckpointError(f"SAM3 checkpoint {path!r} could not be loaded: {exc}") from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"SAM3 checkpoint {path!r} holds a {type(ckpt).__name__}, not a dict")
    return ckpt


def read_sam3_checkpoint(path: str) -> dict[str, Tensor]:
    """All tensors of a SAM3 checkpoint file, flat (``"model"`` / ``"state_dict"`` unwrapped).

    Raises:
        CheckpointError: the file is missing or cannot be read; the message names it.
    """
    ckpt = read_sam3_file(path)
    for key in ("model", "state_dict"):
        if isinstance(ckpt.get(key), Mapping):
            ckpt = ckpt[key]
            break
    return {k: v for k, v in ckpt.items() if torch.is_tensor(v)}


def _is_rope_table(key: str) -> bool:
    return key.endswith("freqs_cis")


def sam3_state_to_trunk(
    state: Mapping[str, Tensor], path: str, prefix: str = SAM3_TRUNK_PREFIX
) -> dict[str, Tensor]:
    """The trunk's own keys out of a full SAM3 state dict (``prefix`` removed).

    Raises:
        CheckpointError: no key starts with ``prefix``; the message names ``path``.
    """
    trunk = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not trunk:
        sample = ", ".join(list(state)[:5])
        raise CheckpointError(
            f"{path!r} holds no SAM3 trunk weights: no key starts with {prefix!r} "
            f"({len(state)} keys, e.g. {sample}). Expected SAM3's sam3.pt or a file written by "
            f"tools/export_sam3_trunk.py."
        )
    return trunk


def load_sam3_trunk(trunk: nn.Module, path: str, prefix: str = SAM3_TRUNK_PREFIX) -> list[str]:
    """Load the trunk weights of the SAM3 checkpoint ``path`` into ``trunk``.

    RoPE tables (``freqs_cis``) whose shape differs from the trunk's (a trunk built for another
    ``img_size``) are dropped and keep the values computed at build. Every other trunk key must
    be present with the same shape.

    Returns:
        The dropped RoPE keys (empty when the checkpoint matches the trunk's size).

    Raises:
        CheckpointError: missing file, no trunk keys, or keys / shapes that do not fit, naming
            the file and the keys.
    """
    state = sam3_state_to_trunk(read_sam3_checkpoint(path), path, prefix)
    own = trunk.state_dict()
    dropped = [
        k for k in state if _is_rope_table(k) and k in own and state[k].shape != own[k].shape
    ]
    for key in dropped:
        del state[key]
    check_state_fits(  # RoPE tables may be absent: they are recomputed
        own, state, f"SAM3 checkpoint {path!r} does not fit the trunk built from the config",
        "Check the backbone's arch / trunk settings against the checkpoint.",
        optional=_is_rope_table)
    trunk.load_state_dict(state, strict=False)
    return dropped


def trunk_to_sam3_state(
    trunk_state: Mapping[str, Tensor],
    base: Mapping[str, Tensor] | None = None,
    prefix: str = SAM3_TRUNK_PREFIX,
) -> dict[str, Tensor]:
    """A SAM3 state dict holding ``trunk_state`` under ``prefix``.

    With ``base`` (the original ``sam3.pt`` state), every key of ``base`` is kept and its trunk
    weights are replaced, so the result has exactly the keys and shapes of the original; the
    RoPE tables stay the base's (they are not learned, and SAM3 runs at its own size). Without
    ``base`` only the trunk keys are written, RoPE tables left out (SAM3 computes them at build).

    Raises:
        CheckpointError: a trunk key of ``base`` is absent from ``trunk_state`` or differs in
            shape (the fine-tuned trunk is not the architecture of the base).
    """
    learned = {k: v for k, v in trunk_state.items() if not _is_rope_table(k)}
    if base is None:
        return {prefix + k: v.detach().clone() for k, v in learned.items()}
    out = dict(base)
    base_keys = [k[len(prefix) :] for k in base if k.startswith(prefix) and not _is_rope_table(k)]
    problems = [k for k in base_keys if k not in learned]
    problems += [
        f"{k}: trunk {tuple(learned[k].shape)} vs base {tuple(base[prefix + k].shape)}"
        for k in base_keys
        if k in learned and learned[k].shape != base[prefix + k].shape
    ]
    extra = [k for k in learned if prefix + k not in base]
    if problems or extra:
        shown = ", ".join((problems + extra)[:8])
        raise CheckpointError(
            f"the fine-tuned trunk does not match the base SAM3 checkpoint's trunk ({shown}); "
            f"export against the sam3.pt the model was fine-tuned from"
        )
    for key in base_keys:
        out[prefix + key] = learned[key].detach().to(base[prefix + key].dtype).clone()
    return out


#: A key every trunk has, used to find where the trunk sits inside a training checkpoint.
_TRUNK_MARKER = "patch_embed.proj.weight"


def state_under_marker(
    path: str,
    marker: str,
    what: str,
    hint: str,
    prefix: str | None = None,
    *,
    candidates: str,
    advice: str,
    prefer_suffix: str | None = None,
) -> tuple[dict[str, Tensor], str]:
    """The weights of one part of a model (a SAM3 trunk, a SAM3 image model) inside an mmengine
    training checkpoint, found by ``marker``, a key every such part has.

    Args:
        path: The training checkpoint (``state_dict`` of the detector or distiller).
        marker: The part's own key that locates it, e.g. ``"patch_embed.proj.weight"``.
        what: The part in messages, e.g. ``"SAM3 trunk"``.
        hint: What to give when the file is missing.
        prefix: Where the part sits, e.g. ``"backbone.trunk."``; ``None`` finds it: the one key
            prefix under which ``marker`` is stored.
        candidates: How the message names the prefixes found when there is not exactly one.
        advice: What the message then says to do.
        prefer_suffix: Among several prefixes found, keep those ending with it (if any).

    Returns:
        The part's state (prefix removed) and the prefix used.

    Raises:
        CheckpointError: missing file, no such part, or several and no ``prefix``.
    """
    state = read_state_dict(path, "training checkpoint", hint)
    if prefix is None:
        found = sorted(k[: -len(marker)] for k in state if k.endswith(marker))
        if prefer_suffix:
            found = [p for p in found if p.endswith(prefer_suffix)] or found
        if len(found) != 1:
            raise CheckpointError(
                f"{path!r}: cannot tell where the {what} is ({candidates}: {found or 'none'}); "
                f"{advice}"
            )
        prefix = found[0]
    part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if marker not in part:
        raise CheckpointError(f"{path!r} holds no {what} under the key prefix {prefix!r}")
    return part, prefix


def trunk_state_from_training_checkpoint(
    path: str, prefix: str | None = None
) -> tuple[dict[str, Tensor], str]:
    """The trunk weights inside an mmengine checkpoint written while training a SAM3 detector.

    Args:
        path: The training checkpoint (``state_dict`` of the detector or distiller).
        prefix: Where the trunk sits, e.g. ``"backbone.trunk."``; ``None`` finds it (the one
            prefix under which a trunk's ``patch_embed.proj.weight`` is stored; one ending with
            ``trunk.`` when there are several).

    Returns:
        The trunk state (prefix removed) and the prefix used.

    Raises:
        CheckpointError: missing file, no trunk, or several trunks and no ``prefix``.
    """
    return state_under_marker(
        path, _TRUNK_MARKER, "SAM3 trunk", "Give the .pth written by tools/train.py.", prefix,
        candidates="candidate key prefixes",
        advice="pass the prefix explicitly, e.g. 'backbone.trunk.'",
        prefer_suffix="trunk.",
    )  # fmt: skip


def _check_rope_tables(trunk: nn.Module) -> None:
    """Refuse a trunk whose complex RoPE tables were cast to a real dtype."""
    for block in trunk.blocks:
        table = getattr(block.attn, "freqs_cis", None)
        if table is not None and not table.is_complex():
            raise RuntimeError(
                "the SAM3 trunk's RoPE tables (freqs_cis) are no longer complex: the trunk was "
                "cast with .to(dtype), which drops their imaginary part. Rebuild it and use "
                "autocast (mmengine AmpOptimWrapper) for mixed precision instead."
            )


def trunk_param_groups(trunk: nn.Module) -> list[list[nn.Parameter]]:
    """The trunk's parameters in forward order: ``[stem, block 0, ..., block D-1, post]``.

    ``stem`` is the patch embedding, the absolute position embedding and ``ln_pre``; ``post`` is
    ``ln_post`` (an ``Identity`` in SAM3, so usually empty).
    """
    stem = [*trunk.patch_embed.parameters(), *trunk.ln_pre.parameters()]
    if trunk.pos_embed is not None:
        stem.append(trunk.pos_embed)
    blocks = [list(block.parameters()) for block in trunk.blocks]
    return [stem, *blocks, list(trunk.ln_post.parameters())]


def set_trunk_trainable_blocks(trunk: nn.Module, num: int) -> int:
    """The trunk's freeze policy: only its last ``num`` blocks train (all of it when ``>= depth``).

    Sets ``requires_grad`` of the trunk's parameters only: the last ``num`` blocks (and
    ``ln_post``, when any block trains) train; with ``num >= depth`` the stem trains too.

    Returns:
        The number of trainable blocks, ``min(num, depth)``.

    Raises:
        ValueError: ``num < 0``.
    """
    if num < 0:
        raise ValueError(f"num_trainable_blocks must be >= 0, got {num}")
    depth = len(trunk.blocks)
    num = min(num, depth)
    trunk.requires_grad_(num >= depth)
    for block in trunk.blocks[depth - num :]:
        block.requires_grad_(True)
    trunk.ln_post.requires_grad_(num > 0)
    return num


def _needs_grad(params: Iterable[nn.Parameter]) -> bool:
    return any(p.requires_grad for p in params)


def pad_to_trunk(x: Tensor, img_size: int) -> Tensor:
    """Zero-pad (N, 3, H, W) at the bottom / right to (N, 3, img_size, img_size).

    Raises:
        ValueError: ``H`` or ``W`` exceeds ``img_size``.
    """
    height, width = x.shape[-2:]
    if height > img_size or width > img_size:
        raise ValueError(
            f"input of {height}x{width} px is larger than the SAM3 trunk's img_size={img_size}: "
            f"resize the images to at most {img_size} px a side, or build the backbone with a "
            f"larger img_size (a multiple of 336 avoids window padding)"
        )
    if height == img_size and width == img_size:
        return x
    return F.pad(x, (0, img_size - width, 0, img_size - height))


def run_trunk(trunk: nn.Module, x: Tensor, use_act_checkpoint: bool | None = None) -> Tensor:
    """The trunk's output map for images of at most ``img_size`` a side.

    Equal to ``trunk(padded x)[-1]`` cropped to the input's extent, but the leading part of the
    trunk whose parameters need no gradient runs under ``torch.no_grad()`` (so nothing is stored
    for the backward pass), and the blocks from the first one with trainable parameters on use
    activation checkpointing when training. A trunk with no trainable parameter (a frozen
    teacher) thus runs entirely without autograd.

    Args:
        trunk: A ``sam3.model.vitdet.ViT`` built by :func:`build_sam3_trunk`.
        x: (N, 3, H, W) normalised images, ``H, W <= img_size``.
        use_act_checkpoint: Defaults to ``trunk.use_act_checkpoint``.

    Returns:
        (N, C, ceil(H / patch), ceil(W / patch)) features after the last global block.
    """
    _check_rope_tables(trunk)
    vitdet = import_vitdet()
    patch = trunk.patch_embed.proj.kernel_size[0]
    img_size = trunk.blocks[trunk.full_attn_ids[-1]].attn.input_size[0] * patch
    height, width = x.shape[-2:]
    x = pad_to_trunk(x, img_size)
    if use_act_checkpoint is None:
        use_act_checkpoint = trunk.use_act_checkpoint
    groups = trunk_param_groups(trunk)
    # index into [stem, blocks..., post] of the first group that needs gradients
    first_trainable = next((i for i, g in enumerate(groups) if _needs_grad(g)), len(groups))
    last_block = trunk.full_attn_ids[-1]
    with torch.set_grad_enabled(torch.is_grad_enabled() and first_trainable == 0):
        tokens = trunk.patch_embed(x)  # (N, h, w, C)
        if trunk.pos_embed is not None:
            tokens = tokens + vitdet.get_abs_pos(
                trunk.pos_embed,
                trunk.pretrain_use_cls_token,
                tokens.shape[1:3],
                trunk.retain_cls_token,
                tiling=trunk.tile_abs_pos,
            )
        tokens = trunk.ln_pre(tokens)
    for index, block in enumerate(trunk.blocks[: last_block + 1]):
        grad = torch.is_grad_enabled() and index + 1 >= first_trainable
        with torch.set_grad_enabled(grad):
            if grad and use_act_checkpoint and block.training:
                tokens = activation_checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
    tokens = trunk.ln_post(tokens)
    feats = tokens.permute(0, 3, 1, 2)
    return feats[..., : math.ceil(height / patch), : math.ceil(width / patch)]
