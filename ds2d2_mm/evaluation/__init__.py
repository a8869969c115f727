"""Evaluation: whole-image DOTA scoring and Task1 submission from patch predictions.

``DOTAWholeImageMetric`` is registered in mmrotate's ``METRICS`` (oriented predictions need
mmrotate) when mmrotate is installed.
"""

from __future__ import annotations

import importlib.util

from .functional.dota_merge import (
    PatchDetections,
    PatchName,
    merge_patch_detections,
    parse_patch_id,
    parse_patch_name,
    rbox_corners,
    write_task1_submission,
)

if importlib.util.find_spec("mmrotate") is not None:
    from mmrotate.registry import METRICS as _ROTATE_METRICS

    from .metrics.dota_metric import DOTAWholeImageMetric, load_whole_image_annotations, register

    register(_ROTATE_METRICS)
    __all__ = ["DOTAWholeImageMetric", "load_whole_image_annotations"]
else:
    __all__ = []

__all__ += ["PatchDetections", "PatchName", "merge_patch_detections", "parse_patch_id",
            "parse_patch_name", "rbox_corners", "write_task1_submission"]
