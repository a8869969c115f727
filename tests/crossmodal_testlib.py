"""Paired RGB + infrared scenes written by the tests (the layout of the DroneVehicle converter and
of the synthetic paired generator: ``<root>/<split>/rgb/<name>.png``, ``<root>/<split>/ir/
<name>.png`` with the infrared a one-band 8-bit PNG, one COCO json per split), and tiny
RetinaNets reading one modality each (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from ds2d2_testlib import tiny_retinanet

SIZE = 64
#: (x1, y1, x2, y2, label) of the objects of every scene.
OBJECTS = [(4.0, 6.0, 30.0, 28.0, 0), (36.0, 30.0, 60.0, 58.0, 2)]
CLASSES = ("car", "truck", "bus")
#: mmdet's ImageNet normalisation (RGB order, after bgr_to_rgb).
RGB_MEAN, RGB_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
IR_MEAN, IR_STD = [90.0], [40.0]


def write_paired(root: Path, split: str = "train", count: int = 2, seed: int = 0) -> Path:
    """``count`` paired scenes and ``annotations/<split>.json``; returns the json path.

    The RGB image is a BGR PNG whose blue channel has a left-to-right ramp; the infrared one is a
    one-band PNG with a top-to-bottom ramp, so that each modality's geometry can be read back.
    """
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i in range(count):
        name = f"{i:05d}.png"
        bgr = rng.integers(0, 60, (SIZE, SIZE, 3)).astype(np.uint8)
        bgr[..., 0] = (xx * 3).astype(np.uint8)
        ir = (yy * 3 + 20).astype(np.uint8)
        for x1, y1, x2, y2, _ in OBJECTS:
            bgr[int(y1):int(y2), int(x1):int(x2), 1:] = 200
            ir[int(y1):int(y2), int(x1):int(x2)] = 250
        for folder, img in (("rgb", bgr), ("ir", ir)):
            path = root / split / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), img)
        images.append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        for x1, y1, x2, y2, label in OBJECTS:
            poly = [x1, y1, x2, y1, x2, y2, x1, y2]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": label + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                                "segmentation": [poly]})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CLASSES)]}
    out = root / "annotations" / f"{split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc))
    return out


def paired_pipeline(flip_prob: float = 0.5, scale=(SIZE + 16, SIZE + 16)) -> list[dict]:
    """The training pipeline of paired scenes (RGB 3 channels, then infrared 1)."""
    return [dict(type="LoadPairedImages", modalities=dict(rgb=3, ir=1)),
            dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=scale, keep_ratio=True),
            dict(type="RandomFlip", prob=flip_prob),
            dict(type="PackDetInputs",
                 meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor",
                            "flip", "flip_direction", "modality_channels"))]


def paired_dataset(root: Path, split: str = "train", pipeline: list | None = None,
                   test_mode: bool = False):
    """A DroneVehicleDataset over ``write_paired``'s files (3 of its classes)."""
    from mmdet.registry import DATASETS

    return DATASETS.build(dict(
        type="DroneVehicleDataset", data_root=str(root), ann_file=f"annotations/{split}.json",
        data_prefix=dict(rgb=f"{split}/rgb/", ir=f"{split}/ir/"),
        metainfo=dict(classes=CLASSES), test_mode=test_mode,
        pipeline=paired_pipeline() if pipeline is None else pipeline))


def paired_preprocessor(ir_mean=IR_MEAN, ir_std=IR_STD) -> dict:
    return dict(type="MultiBandDetDataPreprocessor", pad_size_divisor=32,
                modalities=dict(rgb=dict(mean=RGB_MEAN, std=RGB_STD, bgr_to_rgb=True),
                                ir=dict(mean=ir_mean, std=ir_std)))


def rgb_detector(width: int = 16, fpn: int = 32) -> dict:
    """A tiny RetinaNet as trained on RGB alone (mmdet's preprocessor, BGR -> RGB)."""
    cfg = tiny_retinanet(width=width, fpn=fpn)
    cfg["data_preprocessor"] = dict(type="DetDataPreprocessor", mean=RGB_MEAN, std=RGB_STD,
                                    bgr_to_rgb=True, pad_size_divisor=32)
    return cfg


def ir_detector(width: int = 8, fpn: int = 16) -> dict:
    """A tiny one-band RetinaNet (stock mmdet preprocessor with one mean/std value)."""
    cfg = tiny_retinanet(width=width, fpn=fpn)
    cfg["backbone"]["in_channels"] = 1
    cfg["data_preprocessor"] = dict(type="DetDataPreprocessor", mean=IR_MEAN, std=IR_STD,
                                    bgr_to_rgb=False, pad_size_divisor=32)
    return cfg


def cross_modal_cfg(teacher_input: str = "rgb", student_input: str = "ir", **overrides) -> dict:
    """A SpectralDistiller (random teacher and amplifier) with an RGB teacher, IR student."""
    from ds2d2_testlib import distiller_cfg

    cfg = distiller_cfg(ir_detector(), rgb_detector(), teacher_input=teacher_input,
                        student_input=student_input)
    cfg["data_preprocessor"] = paired_preprocessor()
    cfg.update(overrides)
    return cfg
