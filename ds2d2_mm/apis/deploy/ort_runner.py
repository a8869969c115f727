"""ONNX Runtime inference of an exported student, with the family's own mmdet post-processing.

:class:`OrtDetector` runs the graph(s) of :mod:`.export` in ONNX Runtime sessions and hands their
outputs to the PyTorch student's heads for decoding and NMS (``predict_by_feat``), exactly where
the PyTorch detector's ``predict`` would; the student module is used for its post-processing
alone (its network weights are not run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ...utils.errors import ConfigError
from .export import META_KEY
from .graphs import regroup


def session_options(threads: int):
    """ONNX Runtime session options: ``threads`` intra-op threads, one inter-op, all graph
    optimisations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def providers_for(device: str) -> list[str]:
    """Execution providers of ``device``: ``cpu``, or ``cuda`` (CUDA, then CPU for the rest)."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(f"--device {device}: this onnxruntime has no CUDAExecutionProvider "
                              f"(available: {ort.get_available_providers()}); install "
                              "onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ConfigError(f"--device {device!r}: expected cpu or cuda")


def make_session(model: bytes | str | os.PathLike, threads: int = 1, device: str = "cpu"):
    """An ``InferenceSession`` of ONNX bytes or a file."""
    import onnxruntime as ort

    src = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(src, sess_options=session_options(threads),
                                providers=providers_for(device))


def session_layout(session) -> dict:
    """The layout that :mod:`.export` stored in a graph's metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    if META_KEY not in meta:
        raise ConfigError(f"ONNX graph without '{META_KEY}' metadata: not written by ds2d2-deploy")
    return json.loads(meta[META_KEY])


class OrtDetector:
    """Predicts like ``detector.predict`` with the network run by ONNX Runtime.

    Args:
        detector: The PyTorch student (mmdet detector) whose heads post-process.
        sessions: Graph name -> ``InferenceSession`` (``model``; or ``features_rpn`` and
            ``roi_head``).
    """

    def __init__(self, detector: nn.Module, sessions: dict) -> None:
        self.detector = detector
        self.sessions = dict(sessions)
        self.layouts = {name: session_layout(s) for name, s in self.sessions.items()}
        families = {lay["family"] for lay in self.layouts.values()}
        if len(families) != 1:
            raise ConfigError(f"graphs of several families: {sorted(families)}")
        self.family = families.pop()

    def _run(self, name: str, feeds: dict[str, np.ndarray],
             record: dict[str, list] | None) -> list[np.ndarray]:
        if record is not None:
            record.setdefault(name, []).append(feeds)
        return self.sessions[name].run(None, feeds)

    def _tensors(self, arrays: Sequence[np.ndarray], device: torch.device) -> list[Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: list, rescale: bool = True,
                record: dict[str, list] | None = None) -> list:
        """Detections of the preprocessed batch ``inputs (N, C, H, W)``.

        Args:
            inputs: The detector's ``data_preprocessor`` output.
            data_samples: Its data samples (image metas).
            rescale: Boxes in original image pixels, as ``detector.predict``.
            record: When given, each graph's input feeds are appended under its name (the INT8
                calibration data of :mod:`.quantize`).

        Returns:
            ``data_samples`` with ``pred_instances`` (bboxes ``(n, 4)``, scores ``(n,)``,
            labels ``(n,)``).
        """
        metas = [s.metainfo for s in data_samples]
        device = inputs.device
        x = inputs.detach().cpu().float().numpy()
        if self.family == "dense":
            outs = self._tensors(self._run("model", {"input": x}, record), device)
            head = self.detector.bbox_head
            results = head.predict_by_feat(*regroup(outs, self.layouts["model"]["groups"]),
                                           batch_img_metas=metas, rescale=rescale)
        else:
            results = self._two_stage(x, metas, device, rescale, record)
        return self.detector.add_pred_to_datasample(data_samples, results)

    def _two_stage(self, x: np.ndarray, metas: list[dict], device: torch.device, rescale: bool,
                   record: dict[str, list] | None) -> list:
        from mmdet.models.utils import empty_instances
        from mmdet.structures.bbox import bbox2roi

        lay = self.layouts["features_rpn"]
        arrays = self._run("features_rpn", {"input": x}, record)
        feats, rpn = arrays[:lay["num_feats"]], arrays[lay["num_feats"]:]
        cls_scores, bbox_preds = regroup(self._tensors(rpn, device), lay["groups"])
        proposals = self.detector.rpn_head.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=metas, rescale=False)
        roi_head = self.detector.roi_head
        boxes = [p.bboxes for p in proposals]
        rois = bbox2roi(boxes)
        if rois.shape[0] == 0:
            return empty_instances(metas, rois.device, task_type="bbox",
                                   box_type=roi_head.bbox_head.predict_box_type,
                                   num_classes=roi_head.bbox_head.num_classes,
                                   score_per_cls=False)
        n_used = self.layouts["roi_head"]["num_feats"]
        feeds = {f"feat{i}": feats[i] for i in range(n_used)}
        feeds["rois"] = rois.cpu().float().numpy()
        cls_score, bbox_pred = self._tensors(self._run("roi_head", feeds, record), device)
        per_img = tuple(len(b) for b in boxes)
        return roi_head.bbox_head.predict_by_feat(
            rois=rois.split(per_img, 0), cls_scores=cls_score.split(per_img, 0),
            bbox_preds=bbox_pred.split(per_img, 0), batch_img_metas=metas,
            rcnn_test_cfg=roi_head.test_cfg, rescale=rescale)
