"""Which deployment path a detector takes, and the families that have none.

Every supported family takes the same path: its network (backbone, neck and head outputs) is
exported with ``torch.onnx`` and the family's own mmdet post-processing (the head's
``predict_by_feat``: box decoding, score threshold, NMS) runs on the ONNX Runtime outputs.

- ``dense``: single-stage detectors whose head returns per-level maps (RetinaNet, FCOS, ATSS,
  RTMDet, ...): one graph, ``input -> head outputs``.
- ``two_stage``: Faster R-CNN style detectors (RPN + ``StandardRoIHead`` with a single-level RoI
  extractor and a box head): a ``features + RPN`` graph, the RPN's ``predict_by_feat`` (proposals,
  NMS) on its outputs, then an ``RoI head`` graph (RoIAlign on the FPN maps + box head) and the box
  head's ``predict_by_feat``.
- rotated detectors (mmrotate) are refused: their post-processing needs rotated boxes and
  rotated NMS, which this tool does not export or run.
"""

from __future__ import annotations

from typing import Literal

import torch.nn as nn

from ...utils.errors import ConfigError

Family = Literal["dense", "two_stage"]

#: Head classes (matched along the head's MRO) whose ``forward`` returns per-level maps that
#: ``predict_by_feat`` takes as they are.
DENSE_HEADS = ("AnchorHead", "FCOSHead", "ATSSHead", "RTMDetHead", "GFLHead")
#: Distiller model types: a config of the distillation run, not of the student.
DISTILLER_TYPES = ("SpectralDistiller", "TrunkSelfDistiller")


def _mro_names(obj: object) -> list[str]:
    return [cls.__name__ for cls in type(obj).__mro__]


def _is_rotated(module: nn.Module) -> bool:
    """An mmrotate part, or a head whose box coder / prior generator is mmrotate's (mmrotate
    reuses mmdet's head classes with rotated coders)."""
    parts = [module] + [getattr(module, a) for a in ("bbox_coder", "prior_generator")
                        if getattr(module, a, None) is not None]
    return any(type(p).__module__.startswith("mmrotate") or "Rotated" in type(p).__name__
               for p in parts)


def check_config_model(model_cfg: dict, config_path: str, scope: str = "mmdet") -> None:
    """Refuse a distiller config (``model.type`` names one) and an mmrotate config before
    anything is built."""
    mtype = model_cfg.get("type")
    if scope == "mmrotate":
        head = (model_cfg.get("bbox_head") or model_cfg.get("roi_head") or {}).get("type")
        raise ConfigError(f"{config_path}: model.type={mtype!r} (head {head!r}, "
                          "default_scope='mmrotate') is a rotated detector: it has no export "
                          "path here (its post-processing needs rotated boxes and rotated NMS); "
                          "supported are the horizontal-box families RetinaNet, FCOS, ATSS, "
                          "RTMDet and Faster R-CNN")
    if mtype in DISTILLER_TYPES:
        raise ConfigError(f"{config_path}: model.type={mtype!r} is a distillation config; pass "
                          "the plain student config (the student baseline's, e.g. "
                          "configs/demo/retina_student_synthetic.py) with the exported student")


def detector_family(model: nn.Module) -> Family:
    """The export path of ``model`` (an mmdet detector), or a :class:`ConfigError` naming it."""
    name = type(model).__name__
    parts = [m for m in (model, getattr(model, "bbox_head", None), getattr(model, "rpn_head", None),
                         getattr(model, "roi_head", None)) if m is not None]
    if any(_is_rotated(m) for m in parts):
        heads = ", ".join(type(m).__name__ for m in parts[1:])
        raise ConfigError(f"{name} ({heads}) is a rotated detector: it has no export path here "
                          "(its post-processing needs rotated boxes and rotated NMS); supported "
                          "are the horizontal-box families RetinaNet, FCOS, ATSS, RTMDet and "
                          "Faster R-CNN")
    mro = _mro_names(model)
    if "TwoStageDetector" in mro:
        roi_head = getattr(model, "roi_head", None)
        ok = (roi_head is not None and "StandardRoIHead" in _mro_names(roi_head)
              and type(roi_head).__name__ == "StandardRoIHead"
              and not getattr(roi_head, "with_mask", False)
              and type(roi_head.bbox_roi_extractor).__name__ == "SingleRoIExtractor"
              and type(getattr(model, "rpn_head", None)).__name__ == "RPNHead")
        if ok:
            return "two_stage"
        raise ConfigError(f"{name}: no export path for this two-stage detector (supported: "
                          "RPNHead + StandardRoIHead with a SingleRoIExtractor and a box head, "
                          f"no mask head); its heads are {type(model.rpn_head).__name__}, "
                          f"{type(roi_head).__name__}")
    head = getattr(model, "bbox_head", None)
    if "SingleStageDetector" in mro and head is not None and any(
            h in _mro_names(head) for h in DENSE_HEADS):
        return "dense"
    raise ConfigError(f"{name} (head {type(head).__name__ if head is not None else None}): no "
                      "export path for this detector family (supported: RetinaNet, FCOS, ATSS, "
                      "RTMDet and other dense single-stage heads, Faster R-CNN)")
