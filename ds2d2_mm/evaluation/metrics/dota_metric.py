"""Whole-image DOTA evaluation and submission: ``DOTAWholeImageMetric`` (mmrotate scope).

mmrotate's own ``DOTAMetric`` scores patches, and with ``merge_patches=True`` only writes the
merged submission without scoring it. This metric merges the patch detections of every source
image (:func:`~ds2d2_mm.evaluation.functional.dota_merge.merge_patch_detections`), scores the whole
images against the source label files with mmrotate's ``eval_rbbox_map`` (VOC mAP per IoU threshold,
the per-class table in the log; ``difficult`` objects ignored as by the DOTA devkit), and writes the
Task1 submission when asked. As the DOTA devkit's ``voc_eval``, a detection is matched against the
ground-truth polygon itself (polygon IoU of the detection's 4 corners and the labelled 4 points,
``box_type='qbox'``), not against the rotated rectangle fitted to the polygon: the two differ for
the many DOTA labels that are not exact rectangles. For the test split (images only)
``ann_dir=None`` and ``outfile_prefix`` give the submission alone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from ...datasets.converters.dota_format import parse_dota_txt
from ...utils.errors import ConfigError
from ..functional.dota_merge import (
    PatchDetections,
    merge_patch_detections,
    rbox_corners,
    write_task1_submission,
)

__all__ = ["DOTAWholeImageMetric", "load_whole_image_annotations"]


def load_whole_image_annotations(
    ann_dir: str | os.PathLike, names: Sequence[str], classes: Sequence[str]
) -> list[dict]:
    """Ground truth of whole source images for ``eval_rbbox_map``.

    Args:
        ann_dir: Folder of the source label files ``<name>.txt`` (DOTA lines, optional headers).
        names: Source image names, in the order of the detections.
        classes: Class names of the dataset.

    Returns:
        Per image ``{'bboxes': (n, 8), 'labels': (n,), 'bboxes_ignore': (m, 8),
        'labels_ignore': (m,)}``: the labelled polygons x1, y1, ..., x4, y4 as written, difficult
        objects in the ignore part.

    Raises:
        ConfigError: ``ann_dir`` is missing or lacks a label file, naming the path.
    """
    folder = Path(ann_dir)
    if not folder.is_dir():
        raise ConfigError(f"DOTAWholeImageMetric.ann_dir: {folder} is not a folder of the "
                          "source (unsplit) label files")
    annotations = []
    for name in names:
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise ConfigError(f"DOTAWholeImageMetric.ann_dir: no label file {path} for the "
                              f"patches of image {name!r}")
        objects = parse_dota_txt(path, classes)
        polys = np.array([o.poly for o in objects], dtype=np.float32).reshape(-1, 8)
        labels = np.array([o.label for o in objects], dtype=np.int64)
        hard = np.array([o.difficult > 0 for o in objects], dtype=bool)
        annotations.append(dict(bboxes=polys[~hard], labels=labels[~hard],
                                bboxes_ignore=polys[hard], labels_ignore=labels[hard]))
    return annotations


def register(metrics_registry) -> None:
    """Register :class:`DOTAWholeImageMetric` in ``metrics_registry`` (mmrotate's METRICS)."""
    metrics_registry.register_module(name="DOTAWholeImageMetric", module=DOTAWholeImageMetric,
                                     force=True)


class DOTAWholeImageMetric(BaseMetric):
    """DOTA Task1 on whole images from patch predictions, and the submission files.

    Args:
        ann_dir: Folder of the source (unsplit) label files of the evaluated split, e.g.
            ``data/DOTA/val/labelTxt/``; ``None`` writes the submission only (test split).
        iou_thrs: IoU thresholds of the mAP (DOTA's Task1: 0.5).
        merge_iou_thr: Rotated-IoU threshold of the per-class NMS that merges the patches.
        eval_mode: ``'11points'`` (VOC07, as mmrotate's ``DOTAMetric``) or ``'area'``.
        outfile_prefix: Folder for ``Task1_<class>.txt`` and their zip; must not hold an earlier
            submission. ``None``: no files.
        format_only: Write the submission and skip scoring (needs ``outfile_prefix``).
        collect_device: As mmengine's ``BaseMetric``.
        prefix: Metric name prefix (default ``'dota'``).

    Metrics: ``dota/AP50`` (and ``dota/AP<thr>`` per threshold), ``dota/mAP`` (their mean).
    """

    default_prefix = "dota"

    def __init__(
        self,
        ann_dir: str | None = None,
        iou_thrs: float | Sequence[float] = 0.5,
        merge_iou_thr: float = 0.1,
        eval_mode: str = "11points",
        outfile_prefix: str | None = None,
        format_only: bool = False,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if eval_mode not in ("11points", "area"):
            raise ConfigError(f"DOTAWholeImageMetric.eval_mode: {eval_mode!r} is not '11points' "
                              "or 'area'")
        if format_only and outfile_prefix is None:
            raise ConfigError("DOTAWholeImageMetric: format_only=True needs outfile_prefix (the "
                              "folder of the submission files)")
        if not format_only and ann_dir is None:
            raise ConfigError("DOTAWholeImageMetric: scoring needs ann_dir (the source label "
                              "files); for a test split without labels set format_only=True")
        self.ann_dir = ann_dir
        self.iou_thrs = [iou_thrs] if isinstance(iou_thrs, float) else list(iou_thrs)
        self.merge_iou_thr = merge_iou_thr
        self.use_07_metric = eval_mode == "11points"
        self.outfile_prefix = outfile_prefix
        self.format_only = format_only

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each patch's oriented predictions (patch pixels) with its ``img_id``."""
        for sample in data_samples:
            pred = sample["pred_instances"]
            boxes = pred["bboxes"]
            boxes = getattr(boxes, "tensor", boxes)
            self.results.append(PatchDetections(
                img_id=str(sample["img_id"]),
                bboxes=boxes.detach().cpu().float().numpy().reshape(-1, 5),
                scores=pred["scores"].detach().cpu().float().numpy(),
                labels=pred["labels"].detach().cpu().numpy()))

    def compute_metrics(self, results: list[PatchDetections]) -> dict[str, float]:
        """Merge, write the submission if asked, and score the whole images."""
        from mmrotate.evaluation import eval_rbbox_map

        logger = MMLogger.get_current_instance()
        classes = list(self.dataset_meta["classes"])
        merged = merge_patch_detections(results, len(classes), self.merge_iou_thr)
        logger.info(f"DOTAWholeImageMetric: {len(results)} patches merged into "
                    f"{len(merged)} whole images")
        if self.outfile_prefix is not None:
            zip_path = write_task1_submission(merged, classes, self.outfile_prefix)
            logger.info(f"DOTA Task1 submission written: {zip_path}")
        if self.format_only:
            return {}
        names = sorted(merged)
        annotations = load_whole_image_annotations(self.ann_dir, names, classes)
        # (m, 9): the 4 corners of each merged oriented box and its score
        dets = [[np.concatenate([rbox_corners(d[:, :5]).astype(np.float32), d[:, 5:6]], axis=1)
                 for d in merged[name]] for name in names]
        metrics, aps = {}, []
        for thr in self.iou_thrs:
            logger.info(f"\n{'-' * 15} whole-image DOTA, iou_thr: {thr} {'-' * 15}")
            mean_ap, _ = eval_rbbox_map(dets, annotations, iou_thr=thr,
                                        use_07_metric=self.use_07_metric, box_type="qbox",
                                        dataset=classes, logger=logger, nproc=1)
            metrics[f"AP{int(round(thr * 100))}"] = round(float(mean_ap), 4)
            aps.append(float(mean_ap))
        metrics["mAP"] = round(float(np.mean(aps)), 4)
        return metrics
