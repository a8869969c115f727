"""Build SAM3's full image model (``sam3.model.sam3_image.Sam3Image``) at a given size.

The model is wired exactly as ``sam3/model_builder.py::build_sam3_image_model`` (sam3 0.1.4)
wires it, from sam3's own classes:

    Sam3Image
      backbone: SAM3VLBackbone(scalp=1)
        vision_backbone: Sam3DualViTDetNeck(ViT trunk, PositionEmbeddingSine, scales 4/2/1/0.5)
        language_backbone: VETextEncoder(SimpleTokenizer(BPE file))
      transformer: TransformerWrapper(TransformerEncoderFusion, TransformerDecoder + presence token)
      dot_prod_scoring: DotProductScoring(MLP prompt projection)
      segmentation_head: UniversalSegmentationHead(PixelDecoder, prompt cross-attention)
      geometry_encoder: SequenceGeometryEncoder(point / box prompts)
      matcher: BinaryHungarianMatcherV2 (``model_builder._create_sam3_model`` with eval_mode=False)

with the sizes of :data:`SAM3_IMAGE_ARCHS`: ``"sam3"`` holds the released model's (those the
``_create_*`` functions of model_builder hard-code; a test compares both builds parameter by
parameter), ``"tiny"`` small widths and depths of every part for CPU tests.

Differences from sam3's builder, none of which changes a weight or an output:

- The position encodings and the decoder's box-relative-position coordinates are not
  precomputed at build (sam3 precomputes them on ``"cuda"``, which fails on a machine without a
  GPU); both fill the same caches with the same values at the first forward, on the input's
  device.
- The checkpoint is read with torch's ``weights_only`` loader and clear errors
  (:func:`load_sam3_image_checkpoint`); the key mapping is model_builder's ``_load_checkpoint``'s.
- No download from the Hugging Face hub: weights come from a local ``sam3.pt`` or not at all.
- sam3's text transformer creates its ``positional_embedding`` and ``text_projection`` with
  ``torch.empty`` and never initialises them (the checkpoint always fills them): a random-init
  model would hold whatever memory held, NaNs included. They are initialised here as
  open_clip initialises CLIP's text transformer (normal, std 0.01 and ``width ** -0.5``), so a
  random-init model is finite and reproducible; a checkpoint overwrites them.

Importing this module does not import sam3; building does (with the process's TF32 settings
preserved, :func:`ds2d2_mm.models.backbones.sam3_import.import_sam3`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from ....utils.errors import CheckpointError
from ...backbones.sam3_import import import_sam3
from ...backbones.sam3_trunk import SAM3_TRUNK_ARCHS, build_sam3_trunk, read_sam3_checkpoint
from .vocab import (
    CLIP_BPE_VOCAB_SIZE,
    TINY_BPE_VOCAB_SIZE,
    BpeVocabNotFoundError,
    resolve_bpe_path,
    tiny_bpe_path,
    write_tiny_bpe_vocab,
)

__all__ = [
    "SAM3_IMAGE_ARCHS",
    "BpeVocabNotFoundError",
    "LoadReport",
    "build_sam3_image_model",
    "image_arch_config",
    "load_sam3_image_checkpoint",
    "resolve_bpe_path",
    "sam3_image_state_from_checkpoint",
    "write_tiny_bpe_vocab",
]

#: Key prefix of the image model inside SAM3's released ``sam3.pt`` (the tracker's is
#: ``"tracker."``).
SAM3_DETECTOR_PREFIX = "detector."

#: Sizes of SAM3's image model. Every part has its own entry; ``img_size`` is the input side
#: (square), ``d_model`` the width shared by the neck, the text projection, the transformer,
#: the scoring, the segmentation head and the geometry encoder.
def _vit(trunk_arch: str) -> dict[str, Any]:
    """The ViT entry of an image arch: the sizes of a trunk preset of
    :data:`~ds2d2_mm.models.backbones.sam3_trunk.SAM3_TRUNK_ARCHS` (its ``img_size`` is the
    arch's)."""
    return {k: v for k, v in SAM3_TRUNK_ARCHS[trunk_arch].items() if k != "img_size"}


def _changed(base: Mapping[str, Any], **parts: Any) -> dict[str, Any]:
    """``base`` with some parts changed: a dict updates the part's entries, a value replaces it."""
    arch = copy.deepcopy(dict(base))
    for name, value in parts.items():
        arch[name] = {**arch[name], **value} if isinstance(value, dict) else value
    return arch


_SAM3_IMAGE: dict[str, Any] = dict(
    img_size=1008,
    d_model=256,
    vit=_vit("sam3"),
    neck=dict(scale_factors=(4.0, 2.0, 1.0, 0.5)),
    text=dict(
        width=1024, heads=16, layers=24, context_length=32, vocab_size=CLIP_BPE_VOCAB_SIZE,
        vocab="clip",
    ),
    encoder=dict(num_layers=6, num_heads=8, dim_feedforward=2048),
    decoder=dict(num_layers=6, num_heads=8, dim_feedforward=2048, num_queries=200),
    geometry=dict(num_layers=3, num_heads=8, dim_feedforward=2048),
    scoring=dict(hidden_dim=2048),
    segmentation=dict(upsampling_stages=3, num_heads=8),
)
SAM3_IMAGE_ARCHS: dict[str, dict[str, Any]] = {
    "sam3": _SAM3_IMAGE,
    # every part smaller; the neck's scales and the segmentation head's upsampling stages stay
    "tiny": _changed(
        _SAM3_IMAGE, img_size=112, d_model=32, vit=_vit("tiny"),
        text=dict(width=32, heads=2, layers=2, context_length=16, vocab_size=TINY_BPE_VOCAB_SIZE,
                  vocab="tiny"),
        encoder=dict(num_layers=2, num_heads=2, dim_feedforward=64),
        decoder=dict(num_layers=2, num_heads=2, dim_feedforward=64, num_queries=20),
        geometry=dict(num_layers=1, num_heads=2, dim_feedforward=64), scoring=dict(hidden_dim=64),
        segmentation=dict(num_heads=2)),
}  # fmt: skip

#: Dropout of every transformer layer and of the prompt MLP (as in model_builder).
_DROPOUT = 0.1
#: The keys of an arch dict.
_ARCH_KEYS = {
    "img_size", "d_model", "vit", "neck", "text", "encoder", "decoder", "geometry", "scoring",
    "segmentation",
}  # fmt: skip


def image_arch_config(arch: str | Mapping[str, Any] = "sam3", img_size: int | None = None) -> dict:
    """The size dict of ``arch`` (a preset name or a full dict), with ``img_size`` applied.

    Raises:
        ValueError: unknown preset, missing / unknown keys, or an ``img_size`` that is not a
            multiple of the ViT's patch size.
    """
    if isinstance(arch, str):
        if arch not in SAM3_IMAGE_ARCHS:
            raise ValueError(
                f"unknown SAM3 image arch {arch!r}; choose one of {list(SAM3_IMAGE_ARCHS)} or "
                f"pass a dict with the keys {sorted(_ARCH_KEYS)}"
            )
        cfg = copy.deepcopy(SAM3_IMAGE_ARCHS[arch])
    else:
        cfg = copy.deepcopy(dict(arch))
        missing, unknown = _ARCH_KEYS - set(cfg), set(cfg) - _ARCH_KEYS
        if missing or unknown:
            raise ValueError(
                f"SAM3 image arch dict: missing keys {sorted(missing)}, unknown keys "
                f"{sorted(unknown)} (expected {sorted(_ARCH_KEYS)})"
            )
    if img_size is not None:
        cfg["img_size"] = int(img_size)
    patch = cfg["vit"]["patch_size"]
    if cfg["img_size"] % patch:
        raise ValueError(
            f"SAM3 img_size={cfg['img_size']} must be a multiple of the ViT patch size {patch}"
        )
    return cfg


# ---------------------------------------------------------------------- parts
def _attention(heads: int, d_model: int, dropout: float, **kwargs: Any) -> nn.Module:
    misc = import_sam3("sam3.model.model_misc")
    return misc.MultiheadAttentionWrapper(
        num_heads=heads, dropout=dropout, embed_dim=d_model, **kwargs
    )


def _position_encoding(d_model: int) -> nn.Module:
    """model_builder's ``_create_position_encoding``, the cache filled lazily."""
    pe = import_sam3("sam3.model.position_encoding")
    return pe.PositionEmbeddingSine(
        num_pos_feats=d_model, normalize=True, scale=None, temperature=10000,
        precompute_resolution=None,
    )  # fmt: skip


def _vision_backbone(cfg: dict, enable_inst_interactivity: bool) -> nn.Module:
    """model_builder's ``_create_vision_backbone``: ViT trunk + dual ViTDet neck."""
    necks = import_sam3("sam3.model.necks")
    # the trunk of SAM3ViTBackbone, at the arch's sizes; activation checkpointing as sam3 sets it
    trunk = build_sam3_trunk("sam3", None, **cfg["vit"], img_size=cfg["img_size"])
    return necks.Sam3DualViTDetNeck(
        position_encoding=_position_encoding(cfg["d_model"]),
        d_model=cfg["d_model"],
        scale_factors=list(cfg["neck"]["scale_factors"]),
        trunk=trunk,
        add_sam2_neck=enable_inst_interactivity,
    )


#: open_clip's initialisation of CLIP's text positional embedding.
_TEXT_POS_EMBED_STD = 0.01


def _init_text_tensors(text_encoder: nn.Module) -> None:
    """Initialise the two tensors sam3 leaves uninitialised (see the module docstring)."""
    encoder = text_encoder.encoder
    nn.init.normal_(encoder.positional_embedding, std=_TEXT_POS_EMBED_STD)
    if isinstance(encoder.text_projection, nn.Parameter):
        nn.init.normal_(encoder.text_projection, std=encoder.width**-0.5)


def _text_encoder(cfg: dict, bpe_path: str) -> nn.Module:
    """model_builder's ``_create_text_encoder`` with the arch's widths."""
    tokenizer_mod = import_sam3("sam3.model.tokenizer_ve")
    text_mod = import_sam3("sam3.model.text_encoder_ve")
    text = cfg["text"]
    tokenizer = tokenizer_mod.SimpleTokenizer(bpe_path=bpe_path)
    if tokenizer.vocab_size > text["vocab_size"]:
        raise ValueError(
            f"the BPE vocabulary {bpe_path!r} has {tokenizer.vocab_size} token ids but the text "
            f"encoder of this arch embeds {text['vocab_size']} (arch key text.vocab_size): use "
            f"the vocabulary the arch was made for ({text['vocab']!r})"
        )
    encoder = text_mod.VETextEncoder(
        tokenizer=tokenizer,
        d_model=cfg["d_model"],
        width=text["width"],
        heads=text["heads"],
        layers=text["layers"],
        context_length=text["context_length"],
        vocab_size=text["vocab_size"],
    )
    _init_text_tensors(encoder)
    return encoder


def _encoder_layer(d_model: int, part: dict, batch_first: bool, **pos_enc: bool) -> nn.Module:
    """sam3's pre-norm ``TransformerEncoderLayer`` (ReLU, dropout) with self- and cross-attention
    of ``part["num_heads"]`` heads; ``pos_enc``: where the positional encoding is added."""
    enc_mod = import_sam3("sam3.model.encoder")
    heads = part["num_heads"]
    return enc_mod.TransformerEncoderLayer(
        activation="relu",
        d_model=d_model,
        dim_feedforward=part["dim_feedforward"],
        dropout=_DROPOUT,
        pre_norm=True,
        self_attention=_attention(heads, d_model, _DROPOUT, batch_first=batch_first),
        cross_attention=_attention(heads, d_model, _DROPOUT, batch_first=batch_first),
        **pos_enc,
    )


def _transformer(cfg: dict) -> nn.Module:
    """model_builder's ``_create_sam3_transformer`` (fusion encoder + decoder with presence)."""
    enc_mod = import_sam3("sam3.model.encoder")
    dec_mod = import_sam3("sam3.model.decoder")
    misc = import_sam3("sam3.model.model_misc")
    d, enc, dec = cfg["d_model"], cfg["encoder"], cfg["decoder"]
    encoder_layer = _encoder_layer(
        d, enc, batch_first=True, pos_enc_at_attn=True, pos_enc_at_cross_attn_keys=False,
        pos_enc_at_cross_attn_queries=False,
    )  # fmt: skip
    encoder = enc_mod.TransformerEncoderFusion(
        layer=encoder_layer,
        num_layers=enc["num_layers"],
        d_model=d,
        num_feature_levels=1,
        frozen=False,
        use_act_checkpoint=True,
        add_pooled_text_to_img_feat=False,
        pool_text_with_mask=True,
    )
    decoder_layer = dec_mod.TransformerDecoderLayer(
        activation="relu",
        d_model=d,
        dim_feedforward=dec["dim_feedforward"],
        dropout=_DROPOUT,
        cross_attention=_attention(dec["num_heads"], d, _DROPOUT),
        n_heads=dec["num_heads"],
        use_text_cross_attention=True,
    )
    decoder = dec_mod.TransformerDecoder(
        layer=decoder_layer,
        num_layers=dec["num_layers"],
        num_queries=dec["num_queries"],
        return_intermediate=True,
        box_refine=True,
        num_o2m_queries=0,
        dac=True,
        boxRPB="log",
        d_model=d,
        frozen=False,
        interaction_layer=None,
        dac_use_selfatt_ln=True,
        resolution=None,  # sam3 passes (1008, 14) to precompute coordinates on "cuda"
        stride=None,
        use_act_checkpoint=True,
        presence_token=True,
    )
    return misc.TransformerWrapper(encoder=encoder, decoder=decoder, d_model=d)


def _dot_product_scoring(cfg: dict) -> nn.Module:
    """model_builder's ``_create_dot_product_scoring``."""
    misc = import_sam3("sam3.model.model_misc")
    d = cfg["d_model"]
    prompt_mlp = misc.MLP(
        input_dim=d,
        hidden_dim=cfg["scoring"]["hidden_dim"],
        output_dim=d,
        num_layers=2,
        dropout=_DROPOUT,
        residual=True,
        out_norm=nn.LayerNorm(d),
    )
    return misc.DotProductScoring(d_model=d, d_proj=d, prompt_mlp=prompt_mlp)


def _segmentation_head(cfg: dict) -> nn.Module:
    """model_builder's ``_create_segmentation_head``."""
    seg = import_sam3("sam3.model.maskformer_segmentation")
    d, stages = cfg["d_model"], cfg["segmentation"]["upsampling_stages"]
    pixel_decoder = seg.PixelDecoder(
        num_upsampling_stages=stages, interpolation_mode="nearest", hidden_dim=d
    )
    return seg.UniversalSegmentationHead(
        hidden_dim=d,
        upsampling_stages=stages,
        aux_masks=False,
        presence_head=False,
        dot_product_scorer=None,
        act_ckpt=True,
        cross_attend_prompt=_attention(cfg["segmentation"]["num_heads"], d, 0.0),
        pixel_decoder=pixel_decoder,
    )


def _geometry_encoder(cfg: dict) -> nn.Module:
    """model_builder's ``_create_geometry_encoder`` (its unused CXBlock left out)."""
    geo_mod = import_sam3("sam3.model.geometry_encoders")
    d, geo = cfg["d_model"], cfg["geometry"]
    layer = _encoder_layer(
        d, geo, batch_first=False, pos_enc_at_attn=False, pos_enc_at_cross_attn_queries=False,
        pos_enc_at_cross_attn_keys=True,
    )  # fmt: skip
    return geo_mod.SequenceGeometryEncoder(
        pos_enc=_position_encoding(d),
        encode_boxes_as_points=False,
        points_direct_project=True,
        points_pool=True,
        points_pos_enc=True,
        boxes_direct_project=True,
        boxes_pool=True,
        boxes_pos_enc=True,
        d_model=d,
        num_layers=geo["num_layers"],
        layer=layer,
        use_act_ckpt=True,
        add_cls=True,
        add_post_encode_proj=True,
    )


def _bpe_for(cfg: dict, bpe_path: str | None) -> str:
    """The vocabulary file for the arch: CLIP's (resolved) or the tiny one (written once)."""
    if cfg["text"].get("vocab", "clip") == "tiny" and bpe_path is None:
        return tiny_bpe_path()
    return resolve_bpe_path(bpe_path)


# ---------------------------------------------------------------------- checkpoint
@dataclass
class LoadReport:
    """What loading a SAM3 checkpoint into an image model left out."""

    path: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def describe(self, limit: int = 10) -> str:
        """One line per kind of key, at most ``limit`` names each."""

        def names(keys: list[str]) -> str:
            shown = ", ".join(keys[:limit])
            return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")

        lines = [f"loaded SAM3 image model weights from {self.path}"]
        if self.missing:
            lines.append(
                f"  {len(self.missing)} missing keys (kept at init): {names(self.missing)}"
            )
        if self.unexpected:
            lines.append(
                f"  {len(self.unexpected)} unexpected keys (ignored): {names(self.unexpected)}"
            )
        return "\n".join(lines)


def sam3_image_state_from_checkpoint(
    state: Mapping[str, Tensor], with_tracker: bool = False
) -> dict[str, Tensor]:
    """The image model's keys out of a ``sam3.pt`` state: model_builder's ``_load_checkpoint``.

    Keys holding ``"detector"`` lose ``"detector."``; with ``with_tracker`` (instance
    interactivity), keys holding ``"tracker"`` are mapped to ``inst_interactive_predictor.model.``.
    """
    out = {k.replace(SAM3_DETECTOR_PREFIX, ""): v for k, v in state.items() if "detector" in k}
    if with_tracker:
        out.update(
            {
                k.replace("tracker.", "inst_interactive_predictor.model."): v
                for k, v in state.items()
                if "tracker" in k
            }
        )
    return out


def load_sam3_image_checkpoint(model: nn.Module, path: str) -> LoadReport:
    """Load SAM3's ``sam3.pt`` (or a file of the same layout) into ``model`` (a ``Sam3Image``).

    Shapes must fit; keys may be missing on either side, and both lists are returned (and
    logged by :func:`build_sam3_image_model`).

    Raises:
        CheckpointError: missing or unreadable file, no ``detector.`` keys, or a key present on
            both sides with different shapes (the checkpoint is of another size than the arch).
    """
    raw = read_sam3_checkpoint(path)
    state = sam3_image_state_from_checkpoint(
        raw, with_tracker=getattr(model, "inst_interactive_predictor", None) is not None
    )
    if not state:
        sample = ", ".join(list(raw)[:5])
        raise CheckpointError(
            f"{path!r} holds no SAM3 image model weights: no key contains 'detector' "
            f"({len(raw)} keys, e.g. {sample}). Expected SAM3's released sam3.pt."
        )
    own = model.state_dict()
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if wrong:
        shown = "; ".join(wrong[:6])
        raise CheckpointError(
            f"SAM3 checkpoint {path!r} does not fit the image model built from the arch "
            f"({len(wrong)} shape mismatches: {shown}). Build with arch='sam3' (and the "
            f"img_size the RoPE tables were saved for, or drop them) for the released weights."
        )
    result = model.load_state_dict(state, strict=False)
    return LoadReport(path, sorted(result.missing_keys), sorted(result.unexpected_keys))


# ---------------------------------------------------------------------- the model
def build_sam3_image_model(
    arch: str | dict = "sam3",
    bpe_path: str | None = None,
    checkpoint: str | None = None,
    enable_inst_interactivity: bool = False,
    img_size: int | None = None,
) -> nn.Module:
    """SAM3's own ``Sam3Image`` at the sizes of ``arch``, optionally loaded from ``checkpoint``.

    Args:
        arch: A key of :data:`SAM3_IMAGE_ARCHS` or a dict of the same layout.
        bpe_path: CLIP's BPE vocabulary; ``None`` finds it (:func:`resolve_bpe_path`), or, for an
            arch whose ``text.vocab`` is ``"tiny"``, writes the tiny vocabulary once.
        checkpoint: Local ``sam3.pt``; ``None`` keeps the random initialisation.
        enable_inst_interactivity: Add SAM3's SAM1-style instance predictor (the tracker and
            the neck's SAM2 branch), as sam3 does; only at the released sizes and on a GPU.
        img_size: Input side in pixels (square), overriding the arch's.

    Returns:
        ``sam3.model.sam3_image.Sam3Image`` in train mode, on the CPU, with its matcher (as
        sam3 builds it for training). Its input is (B, 3, img_size, img_size) images
        normalised with mean 0.5 and std 0.5 on [0, 1] RGB.

    Raises:
        ValueError: bad arch or img_size; instance interactivity with another arch or no GPU.
        BpeVocabNotFoundError: no vocabulary file.
        CheckpointError: a checkpoint that cannot be read or does not fit.
    """
    cfg = image_arch_config(arch, img_size)
    if enable_inst_interactivity and (
        cfg["d_model"] != SAM3_IMAGE_ARCHS["sam3"]["d_model"] or not torch.cuda.is_available()
    ):
        raise ValueError(
            "enable_inst_interactivity needs SAM3's tracker, which sam3 builds at the released "
            "sizes only (arch='sam3') and on a CUDA device (it precomputes tables on 'cuda')"
        )
    builder = import_sam3("sam3.model_builder")
    bpe = _bpe_for(cfg, bpe_path)
    vision = _vision_backbone(cfg, enable_inst_interactivity)
    backbone = builder._create_vl_backbone(vision, _text_encoder(cfg, bpe))
    inst_predictor = None
    if enable_inst_interactivity:
        tracker = builder.build_tracker(apply_temporal_disambiguation=False)
        inst_predictor = builder.SAM3InteractiveImagePredictor(tracker)
    model = builder._create_sam3_model(
        backbone,
        _transformer(cfg),
        _geometry_encoder(cfg),
        _segmentation_head(cfg),
        _dot_product_scoring(cfg),
        inst_predictor,
        eval_mode=False,
    )
    model.arch_cfg = cfg  # plain attribute: the sizes the model was built with
    if checkpoint is not None:
        report = load_sam3_image_checkpoint(model, checkpoint)
        print_log(report.describe(), "current")
    return model
