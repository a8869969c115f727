"""Load an exported student and export its network with ``torch.onnx``.

The exporter is ``torch.onnx.export(..., dynamo=False)`` (the TorchScript-based one, opset 17):
it exports the mmdet backbones, necks and heads and torchvision's RoIAlign with dynamic batch,
height and width (and a dynamic RoI count) as they are. Each graph's layout (family, head output
groups, feature count) is stored in its ONNX metadata, so :mod:`.ort_runner` needs the files and
the student config alone.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from ...utils.checkpoint import allow_mmengine_checkpoints
from ...utils.errors import CheckpointError, ConfigError
from .families import Family, check_config_model, detector_family
from .graphs import DenseGraph, FeatureRPNGraph, RoIGraph, flatten_groups, sample_rois

OPSET = 17
EXPORTER = f"torch.onnx.export(dynamo=False), opset {OPSET}"
META_KEY = "ds2d2_deploy"
DISTILLER_PREFIXES = ("student.", "connector.", "explicit.")


@dataclass
class ExportedGraph:
    """One ONNX graph in memory: its bytes and its layout."""

    name: str
    onnx_bytes: bytes
    input_names: list[str]
    output_names: list[str]
    layout: dict = field(default_factory=dict)


def load_student(config_path: str, checkpoint: str, cfg_options: dict | None = None,
                 device: str = "cpu") -> tuple[object, nn.Module, Family]:
    """Build the student of ``config_path``, load ``checkpoint`` (strict) and find its family.

    Returns:
        ``(cfg, model in eval mode, family)``.

    Raises:
        ConfigError: A missing or distiller config, or a family without an export path.
        CheckpointError: A missing checkpoint, a distiller checkpoint (before
            ``ds2d2-export-student``), or weights that do not fit the config.
    """
    from mmengine.config import Config

    from ..runner import init_scope

    if not os.path.isfile(config_path):
        raise ConfigError(f"config file not found: {config_path!r}")
    if not os.path.isfile(checkpoint):
        raise CheckpointError(f"student checkpoint not found: {checkpoint!r}")
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_model(cfg.model, config_path, cfg.get("default_scope", "mmdet"))
    allow_mmengine_checkpoints()
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{checkpoint!r} holds no state_dict")
    if any(k.startswith(DISTILLER_PREFIXES) for k in state):
        raise CheckpointError(
            f"{checkpoint!r} is a distiller checkpoint (its weights are 'student.*', "
            f"'connector.*', ...): export the student first with `ds2d2-export-student "
            f"{checkpoint} student.pth` (tools/export_student.py) and deploy student.pth")
    init_scope(cfg)
    from mmdet.registry import MODELS

    model = MODELS.build(cfg.model)
    family = detector_family(model)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise CheckpointError(f"{checkpoint!r} does not fit {config_path!r}: "
                              f"{first[0].strip()}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{checkpoint!r} does not fit {config_path!r}: {len(missing)} missing keys (e.g. "
            f"{missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    return cfg, model.to(device).eval(), family


def _to_onnx(module: nn.Module, args: tuple[Tensor, ...], input_names: list[str],
             output_names: list[str], dynamic_axes: dict, layout: dict) -> bytes:
    """Export ``module(*args)`` to ONNX bytes, with ``layout`` as JSON metadata."""
    import onnx

    buf = io.BytesIO()
    # eval mode for the wrapper too: the exporter restores the wrapper's mode afterwards, which
    # would put a training-mode wrapper's detector (batch norm) into training mode
    module.eval()
    with warnings.catch_warnings():
        # the TorchScript exporter's deprecation notice and tracer warnings on shape arithmetic
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(layout)
    return proto.SerializeToString()


def _map_axes(names: list[str], prefix: str) -> dict:
    return {n: {0: "batch", 2: f"{prefix}{n}_h", 3: f"{prefix}{n}_w"} for n in names}


@torch.no_grad()
def export_graphs(model: nn.Module, family: Family, inputs: Tensor) -> list[ExportedGraph]:
    """Trace ``model``'s network on ``inputs (N, C, H, W)`` and export its graph(s).

    Returns:
        ``[model]`` for a dense detector; ``[features_rpn, roi_head]`` for a two-stage one.
    """
    model.eval()
    img_axes = {"input": {0: "batch", 2: "height", 3: "width"}}
    if family == "dense":
        _, sizes = flatten_groups(model.bbox_head(model.extract_feat(inputs)))
        outs = [f"out{g}_{lvl}" for g, n in enumerate(sizes) for lvl in range(n)]
        layout = {"family": family, "graph": "model", "groups": sizes}
        data = _to_onnx(DenseGraph(model), (inputs,), ["input"], outs,
                        {**img_axes, **_map_axes(outs, "")}, layout)
        return [ExportedGraph("model", data, ["input"], outs, layout)]
    feats = model.extract_feat(inputs)
    _, sizes = flatten_groups(model.rpn_head(feats))
    feat_names = [f"feat{i}" for i in range(len(feats))]
    rpn_names = [f"rpn{g}_{lvl}" for g, n in enumerate(sizes) for lvl in range(n)]
    layout1 = {"family": family, "graph": "features_rpn", "num_feats": len(feats),
               "groups": sizes}
    g1 = _to_onnx(FeatureRPNGraph(model), (inputs,), ["input"], feat_names + rpn_names,
                  {**img_axes, **_map_axes(feat_names + rpn_names, "")}, layout1)
    roi_graph = RoIGraph(model.roi_head)
    used = feat_names[:roi_graph.num_inputs]
    rois = sample_rois(inputs.shape[2], inputs.shape[3], inputs.device)
    layout2 = {"family": family, "graph": "roi_head", "num_feats": len(used)}
    axes2 = {**_map_axes(used, ""), "rois": {0: "num_rois"}, "cls_score": {0: "num_rois"},
             "bbox_pred": {0: "num_rois"}}
    g2 = _to_onnx(roi_graph, (*feats[:len(used)], rois), [*used, "rois"],
                  ["cls_score", "bbox_pred"], axes2, layout2)
    return [ExportedGraph("features_rpn", g1, ["input"], feat_names + rpn_names, layout1),
            ExportedGraph("roi_head", g2, [*used, "rois"], ["cls_score", "bbox_pred"], layout2)]
