"""Tiny random-init detectors and batches for the tests (CPU only, no network)."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def _parsed_config(path: str):
    from mmengine.config import Config

    return Config.fromfile(path)


def load_config(path: str | Path):
    """``Config.fromfile(path)``, parsed once per test session (a fresh copy each call): the
    shipped configs resolve mmdet:: bases, which makes parsing the same file again costly."""
    return copy.deepcopy(_parsed_config(str(path)))


def _base_model(name: str) -> dict:
    from ds2d2_mm.apis.runner import mm_base_model

    return copy.deepcopy(mm_base_model(name))


def tiny_retinanet(width: int = 8, fpn: int = 16, num_classes: int = 3,
                   num_outs: int = 5) -> dict:
    """RetinaNet with a ResNet-18 of ``width`` base channels and an FPN of ``fpn`` channels."""
    cfg = _base_model("retinanet_r50_fpn.py")
    cfg["backbone"].update(depth=18, base_channels=width, init_cfg=None, frozen_stages=-1,
                           norm_eval=False)
    cfg["neck"].update(in_channels=[width * 2**i for i in range(4)], out_channels=fpn,
                       num_outs=num_outs)
    cfg["bbox_head"].update(num_classes=num_classes, in_channels=fpn, feat_channels=fpn,
                            stacked_convs=1)
    if num_outs != 5:
        cfg["bbox_head"]["anchor_generator"]["strides"] = [8 * 2**i for i in range(num_outs)]
    return cfg


def tiny_faster_rcnn(width: int = 8, fpn: int = 16, num_classes: int = 3) -> dict:
    """Faster R-CNN with a ResNet-18 of ``width`` base channels and an FPN of ``fpn`` channels."""
    cfg = _base_model("faster-rcnn_r50_fpn.py")
    cfg["backbone"].update(depth=18, base_channels=width, init_cfg=None, frozen_stages=-1,
                           norm_eval=False)
    cfg["neck"].update(in_channels=[width * 2**i for i in range(4)], out_channels=fpn)
    cfg["rpn_head"].update(in_channels=fpn, feat_channels=fpn)
    cfg["roi_head"]["bbox_roi_extractor"]["out_channels"] = fpn
    cfg["roi_head"]["bbox_head"].update(in_channels=fpn, fc_out_channels=32,
                                        num_classes=num_classes)
    return cfg


def distiller_cfg(student: dict, teacher: dict, **distill: object) -> dict:
    """A SpectralDistiller config with a random teacher and amplifier (tests only)."""
    amp = dict(type="HighFrequencyAmplifier", detector=copy.deepcopy(teacher), decomposer="haar")
    return dict(type="SpectralDistiller", student=student, teacher_config=dict(model=teacher),
                amplifier_config=dict(model=amp), allow_random_teacher=True,
                distill_cfg=dict(distill))


def make_batch(model: torch.nn.Module, batch_size: int = 2, size: int = 64,
               num_boxes: int | list[int] = 3, num_classes: int = 3, seed: int = 0,
               training: bool = True) -> tuple[torch.Tensor, list]:
    """A preprocessed random batch with ground-truth boxes for ``model``."""
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(seed)
    items = num_boxes if isinstance(num_boxes, list) else [num_boxes] * batch_size
    packed = demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, size, size)] * batch_size,
                            num_items=items, num_classes=num_classes)
    data = model.data_preprocessor(packed, training)
    return data["inputs"], data["data_samples"]


def without_pretrained(cfg: dict) -> dict:
    """``cfg`` with every ``Pretrained`` init_cfg set to None, in place (tests never download)."""
    for value in cfg.values():
        if isinstance(value, dict):
            without_pretrained(value)
    init = cfg.get("init_cfg")
    if isinstance(init, dict) and init.get("type") == "Pretrained":
        cfg["init_cfg"] = None
    return cfg


def build(cfg: dict) -> torch.nn.Module:
    """Build a model from a config dict, with weights initialised as the runner would."""
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
    model.init_weights()
    return model


def loss_and_sampled_rois(model, inputs, samples) -> tuple[dict, torch.Tensor]:
    """A distiller's losses, and the RoIs (R, 1 + box dim) that its two-stage student sampled in
    that call (batch index, then the box), recorded at the student's ``roi_head.bbox_loss``."""
    seen = []
    original = model.student.roi_head.bbox_loss

    def spy(x, sampling_results):
        seen.append([getattr(r.priors, "tensor", r.priors).detach().clone()
                     for r in sampling_results])
        return original(x, sampling_results)

    model.student.roi_head.bbox_loss = spy
    try:
        losses = model.loss(inputs, samples)
    finally:
        del model.student.roi_head.bbox_loss
    assert len(seen) == 1
    rois = torch.cat([torch.cat([torch.full((len(p), 1), float(i)), p], dim=1)
                      for i, p in enumerate(seen[0])])
    return losses, rois


def connector_of(loss: torch.nn.Module, student_channels: int, teacher_channels: int,
                 num_levels: int) -> torch.nn.Module:
    """The connector an explicit-stream loss asks for (as the distiller builds it), for tests of
    a loss on its own."""
    from mmdet.registry import MODELS

    return MODELS.build(dict(loss.connector_cfg(), in_channels=student_channels,
                             out_channels=teacher_channels, num_levels=num_levels))


def placeholder_data(root: Path, files: tuple[str, ...] = (), folders: tuple[str, ...] = (),
                     eval_ann: str | None = None) -> list[str]:
    """Empty dataset files under ``root`` and the ``--cfg-options`` that point a config's train,
    val and test loaders (and, with ``eval_ann``, its COCO evaluators) at ``root``.

    For tests of tools that stop, or build the runner, before any loader reads a file: the tools
    check that the dataset files exist before the runner starts (``ds2d2_mm.apis.preflight``).
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    for name in folders:
        (root / name).mkdir(parents=True, exist_ok=True)
    splits = ("train", "val", "test")
    options = [f"{split}_dataloader.dataset.data_root={root}/" for split in splits]
    if eval_ann is not None:
        options += [f"{split}_evaluator.ann_file={root}/{eval_ann}" for split in ("val", "test")]
    return options


#: The files the DIOR configs read (configs/_base_/datasets/dior_detection.py), for
#: :func:`placeholder_data`.
DIOR_FILES = dict(files=("annotations/trainval.json", "annotations/test.json"),
                  eval_ann="annotations/test.json")
#: The files the demo configs read (configs/demo/_synthetic_base.py).
SYNTHETIC_FILES = dict(files=("annotations/train.json", "annotations/val.json"),
                       eval_ann="annotations/val.json")
