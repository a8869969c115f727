"""The built-in synthetic aerial dataset: generation on first use, reproducible to the byte.

Layout under ``out_dir``::

    images/{train,val}/NNNNN.png          RGB scenes (img_size x img_size)
    annotations/{train,val}.json          COCO, horizontal boxes, file_name relative to out_dir
    labelTxt/{train,val}/NNNNN.txt        DOTA-style oriented boxes (4 corners, class, 0)
    .complete.json                        written last: generator version and parameters

Scenes are drawn by :func:`ds2d2_mm.datasets.synthetic_scene.render_scene` with a generator
seeded by ``(seed, split, index)``, so each image is independent of the others and a fixed seed
gives identical files. Every file is written atomically; the completion marker is removed before
and written after generation, so an interrupted run is redone by the next call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .classes import SYNTHETIC_CLASSES, coco_categories
from .dota import format_dota_line
from .io import atomic_write_image, atomic_write_json, atomic_write_text
from .synthetic_scene import SceneObject, render_scene

__all__ = [
    "SYNTHETIC_VERSION",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "synthetic_dataset_is_complete",
]

#: Bumped whenever the generator's output changes, so stale datasets are regenerated.
SYNTHETIC_VERSION = 1
_MARKER = ".complete.json"
_SPLITS = ("train", "val")
_SPLIT_STREAM = {"train": 0, "val": 1}


def _params(num_train: int, num_val: int, img_size: int, seed: int) -> dict:
    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if img_size < 64:
        raise ValueError(f"img_size must be >= 64 pixels, got {img_size}")
    return {"version": SYNTHETIC_VERSION, "num_train": int(num_train), "num_val": int(num_val),
            "img_size": int(img_size), "seed": int(seed)}


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in np.asarray(values).ravel()]


def _label_text(objects: list[SceneObject]) -> str:
    return "".join(
        format_dota_line(_round(o.pose.corners()), SYNTHETIC_CLASSES[o.label], 0) + "\n"
        for o in objects
    )


def _remove_stale(folder: Path, suffix: str, keep: set[str]) -> None:
    if folder.is_dir():
        for path in folder.glob(f"*{suffix}"):
            if path.name not in keep:
                path.unlink()


def _generate_split(out: Path, split: str, count: int, img_size: int, seed: int) -> dict:
    images, annotations = [], []
    class_counts = dict.fromkeys(SYNTHETIC_CLASSES, 0)
    names = [f"{i:05d}" for i in range(count)]
    for index, name in enumerate(names):
        rng = np.random.default_rng([seed, _SPLIT_STREAM[split], index])
        image, objects = render_scene(rng, img_size)
        file_name = f"images/{split}/{name}.png"
        atomic_write_image(out / file_name, image[..., ::-1])  # RGB -> BGR for OpenCV
        atomic_write_text(out / "labelTxt" / split / f"{name}.txt", _label_text(objects))
        images.append({"id": index + 1, "file_name": file_name, "width": img_size,
                       "height": img_size})
        for obj in objects:
            x1, y1, x2, y2 = _round(obj.hbox)
            w, h = round(x2 - x1, 2), round(y2 - y1, 2)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1,
                "category_id": obj.label + 1, "bbox": [x1, y1, w, h], "area": round(w * h, 4),
                "iscrowd": 0,
            })
            class_counts[SYNTHETIC_CLASSES[obj.label]] += 1
    _remove_stale(out / "images" / split, ".png", {f"{n}.png" for n in names})
    _remove_stale(out / "labelTxt" / split, ".txt", {f"{n}.txt" for n in names})
    coco = {"images": images, "annotations": annotations,
            "categories": coco_categories(SYNTHETIC_CLASSES)}
    atomic_write_json(out / "annotations" / f"{split}.json", coco)
    return {"images": len(images), "objects": len(annotations), "class_counts": class_counts}


def generate_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_train: int = 240,
    num_val: int = 60,
    img_size: int = 192,
    seed: int = 0,
) -> dict:
    """Generates (or regenerates) the synthetic dataset under ``out_dir``.

    Args:
        out_dir: Dataset root (created when missing).
        num_train: Training images.
        num_val: Validation images.
        img_size: Image side in pixels.
        seed: Random seed; the same parameters give byte-identical files.

    Returns:
        ``{"out_dir", "params", "splits": {split: {"images", "objects", "class_counts"}}}``.
    """
    out = Path(out_dir)
    params = _params(num_train, num_val, img_size, seed)
    (out / _MARKER).unlink(missing_ok=True)
    splits = {
        split: _generate_split(out, split, count, img_size, seed)
        for split, count in zip(_SPLITS, (num_train, num_val))
    }
    atomic_write_json(out / _MARKER, {"params": params, "splits": splits}, indent=1)
    return {"out_dir": str(out), "params": params, "splits": splits}


def synthetic_dataset_is_complete(
    out_dir: str | os.PathLike,
    num_train: int = 240,
    num_val: int = 60,
    img_size: int = 192,
    seed: int = 0,
) -> bool:
    """Whether ``out_dir`` holds a complete dataset generated with exactly these parameters."""
    try:
        marker = json.loads((Path(out_dir) / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("params") == _params(num_train, num_val, img_size, seed)


def ensure_synthetic_dataset(
    out_dir: str | os.PathLike,
    num_train: int = 240,
    num_val: int = 60,
    img_size: int = 192,
    seed: int = 0,
) -> Path:
    """Returns ``out_dir`` after generating the dataset there unless it is already complete.

    "Complete" means the marker written at the end of :func:`generate_synthetic_dataset` exists
    with the same parameters and generator version.
    """
    out = Path(out_dir)
    if not synthetic_dataset_is_complete(out, num_train, num_val, img_size, seed):
        generate_synthetic_dataset(out, num_train, num_val, img_size, seed)
    return out
