"""The built-in synthetic aerial dataset: generation on first use, reproducible to the byte.

Layout under ``out_dir``::

    images/{train,val,test}/NNNNN.png     RGB scenes (img_size x img_size)
    annotations/{train,val,test}.json     COCO, horizontal boxes, file_name relative to out_dir
    labelTxt/{train,val,test}/NNNNN.txt   DOTA-style oriented boxes (4 corners, class, 0)
    .complete.json                        written last: generator version and parameters

Sensor variants (``variant=``, :mod:`.variants`) go in their own folder with the same splits,
annotations and boxes: ``sar`` (1-band float32 TIFFs) and ``rgbn`` (4-band uint16 TIFFs) in
``images/{split}/NNNNN.tif`` plus ``band_stats.json`` (per-band mean / std of the train split,
as ``ds2d2-band-stats`` writes it); ``paired`` in ``{split}/rgb/NNNNN.png`` and
``{split}/ir/NNNNN.png`` (no labelTxt). Their marker records the variant (and the SAR looks); the
RGB default's marker and files are those of the first release.

Scenes are drawn by :func:`ds2d2_mm.tooling.synthetic.scene.render_scene` with a generator
seeded by ``(seed, split stream, index)`` (streams: train 0, val 1, test 2), so each image is
independent of the others and of the other splits' sizes, and a fixed seed gives identical files.
Every file is written atomically; the completion marker is removed before and written after
generation, so an interrupted run is redone by the next call.

The ``test`` split is held out: the demo's settings were chosen on ``val``, so ``test`` gives an
unbiased final number. It came after the first release; a dataset folder generated before it (its
marker without ``num_test``) gets the test split added by the next
:func:`ensure_synthetic_dataset` call, its train and val files untouched (they do not depend on
the test split: the same parameters give the same bytes with or without it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...datasets.band_statistics import BandStatsAccumulator
from ...datasets.classes import SYNTHETIC_CLASSES, coco_categories
from ...datasets.converters.dota_format import format_dota_line
from ...datasets.raster import read_raster
from ...utils.io import atomic_write_json, atomic_write_text
from .scene import SceneObject, render_scene
from .variants import DEFAULT_LOOKS, VARIANTS, variant_rng

__all__ = [
    "BAND_STATS_FILE",
    "SYNTHETIC_VERSION",
    "ensure_synthetic_dataset",
    "generate_synthetic_dataset",
    "synthetic_dataset_is_complete",
    "synthetic_params",
    "update_synthetic_dataset",
    "write_band_stats",
]

#: Bumped whenever the generator's output changes, so stale datasets are regenerated.
SYNTHETIC_VERSION = 1
_MARKER = ".complete.json"
#: Band statistics of a raster variant's train split, at the dataset root.
BAND_STATS_FILE = "band_stats.json"
_SPLITS = ("train", "val", "test")
#: The seed stream of each split. Fixed: a new split takes a new stream, so that the files of
#: the others never change.
_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
#: The splits of the first release (a marker without ``num_test`` holds exactly these).
_BASE_SPLITS = ("train", "val")


def synthetic_params(num_train: int = 240, num_val: int = 60, img_size: int = 192, seed: int = 0,
                     num_test: int | None = None, variant: str = "rgb",
                     looks: float | None = None) -> dict:
    """The generator's parameters, checked, as the completion marker records them.

    Every function of this module that makes or checks a dataset takes these, by position or
    name, after ``out_dir``.

    Args:
        num_train: Training images.
        num_val: Validation images.
        img_size: Image side in pixels.
        seed: Random seed; the same parameters give byte-identical files.
        num_test: Held-out test images (``None``: as many as ``num_val``).
        variant: ``rgb`` (the built-in dataset), ``sar``, ``rgbn`` or ``paired``
            (:mod:`.variants`).
        looks: Looks of the SAR speckle (``sar`` only; default :data:`DEFAULT_LOOKS`).

    Returns:
        The marker's ``params``; ``variant`` (and ``looks`` for SAR) only for a sensor variant,
        so the RGB default's marker keeps its first-release bytes.

    Raises:
        ValueError: a parameter out of range, naming it.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if looks is not None and variant != "sar":
        raise ValueError(f"looks applies to the sar variant only, not to {variant!r}")
    looks = DEFAULT_LOOKS if looks is None and variant == "sar" else looks
    if looks is not None and not looks > 0:
        raise ValueError(f"looks must be > 0, got {looks}")
    num_test = num_val if num_test is None else num_test
    for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if img_size < 64:
        raise ValueError(f"img_size must be >= 64 pixels, got {img_size}")
    if VARIANTS[variant].raster and num_train < 1:
        raise ValueError(f"variant {variant!r} writes the band statistics of the train split: "
                         f"num_train must be >= 1, got {num_train}")
    params = {"version": SYNTHETIC_VERSION, "num_train": int(num_train), "num_val": int(num_val),
              "num_test": int(num_test), "img_size": int(img_size), "seed": int(seed)}
    if variant != "rgb":
        params["variant"] = variant
    if looks is not None:
        params["looks"] = float(looks)
    return params


def _variant_of(params: dict) -> str:
    return params.get("variant", "rgb")


def _without_test(params: dict) -> dict:
    """The parameters of the train and val splits (a first-release marker's ``params``)."""
    return {key: value for key, value in params.items() if key != "num_test"}


def _read_marker(out: Path) -> dict | None:
    try:
        marker = json.loads((out / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


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


def _generate_split(out: Path, split: str, count: int, params: dict) -> dict:
    img_size, seed = params["img_size"], params["seed"]
    variant = VARIANTS[_variant_of(params)]
    images, annotations = [], []
    class_counts = dict.fromkeys(SYNTHETIC_CLASSES, 0)
    names = [f"{i:05d}" for i in range(count)]
    for index, name in enumerate(names):
        stream = _SPLIT_STREAM[split]
        rng = np.random.default_rng([seed, stream, index])
        image, objects = render_scene(rng, img_size)
        own = None if variant.name == "rgb" else variant_rng(seed, stream, index, variant.name)
        files = variant.write(out, split, name, image, objects, own,
                              params.get("looks", DEFAULT_LOOKS))
        if variant.labels:
            atomic_write_text(out / "labelTxt" / split / f"{name}.txt", _label_text(objects))
        images.append({"id": index + 1, "file_name": files["file_name"], "width": img_size,
                       "height": img_size, **{k: v for k, v in files.items() if k != "file_name"}})
        for obj in objects:
            x1, y1, x2, y2 = _round(obj.hbox)
            w, h = round(x2 - x1, 2), round(y2 - y1, 2)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1,
                "category_id": obj.label + 1, "bbox": [x1, y1, w, h], "area": round(w * h, 4),
                "iscrowd": 0,
            })
            class_counts[SYNTHETIC_CLASSES[obj.label]] += 1
    for folder, suffix in variant.folders(split):
        _remove_stale(out / folder, suffix, {f"{n}{suffix}" for n in names})
    if variant.labels:
        _remove_stale(out / "labelTxt" / split, ".txt", {f"{n}.txt" for n in names})
    coco = {"images": images, "annotations": annotations,
            "categories": coco_categories(SYNTHETIC_CLASSES)}
    atomic_write_json(out / "annotations" / f"{split}.json", coco)
    return {"images": len(images), "objects": len(annotations), "class_counts": class_counts}


def write_band_stats(out: Path, split: str = "train") -> dict:
    """Per-band statistics of a raster variant's ``split`` images (read back from the files, in
    name order, as ``ds2d2-band-stats out/images/<split>`` computes them), written to
    ``out/band_stats.json``; returns the document."""
    acc = BandStatsAccumulator()
    for path in sorted((out / "images" / split).glob("*.tif")):
        acc.update(read_raster(path), path)
    stats = acc.result()
    atomic_write_json(out / BAND_STATS_FILE, stats, indent=1)
    return stats


def generate_synthetic_dataset(out_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> dict:
    """Generates (or regenerates) the synthetic dataset under ``out_dir``.

    Args:
        out_dir: Dataset root (created when missing).
        *args, **kwargs: The generator's parameters, by position or name: those of
            :func:`synthetic_params` (num_train, num_val, img_size, seed, num_test, variant,
            looks). Give each variant its own ``out_dir``.

    Returns:
        ``{"out_dir", "params", "splits": {split: {"images", "objects", "class_counts"}}}``.
    """
    return _generate(Path(out_dir), synthetic_params(*args, **kwargs))


def _generate(out: Path, params: dict) -> dict:
    """Every split of the dataset with these (checked) parameters, the marker last."""
    (out / _MARKER).unlink(missing_ok=True)
    splits = {}
    for split in _SPLITS:
        splits[split] = _generate_split(out, split, params[f"num_{split}"], params)
        if split == "train" and VARIANTS[_variant_of(params)].raster:
            write_band_stats(out)
    atomic_write_json(out / _MARKER, {"params": params, "splits": splits}, indent=1)
    return {"out_dir": str(out), "params": params, "splits": splits}


def _add_test_split(out: Path, params: dict, marker: dict) -> dict:
    """(Re)generates only the test split of a dataset whose train and val splits are complete
    with ``params``; returns the summary of the whole dataset."""
    splits = {split: marker["splits"][split] for split in _BASE_SPLITS}
    if "num_test" in marker["params"]:
        # while the test files are rewritten the marker claims train and val only
        atomic_write_json(out / _MARKER, {"params": _without_test(params), "splits": splits},
                          indent=1)
    splits["test"] = _generate_split(out, "test", params["num_test"], params)
    atomic_write_json(out / _MARKER, {"params": params, "splits": splits}, indent=1)
    return {"out_dir": str(out), "params": params, "splits": splits}


def synthetic_dataset_is_complete(out_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> bool:
    """Whether ``out_dir`` holds a complete dataset generated with exactly these parameters
    (those of :func:`synthetic_params`, the variant and SAR looks included), its test split
    included (``num_test=None``: as many test images as ``num_val``)."""
    marker = _read_marker(Path(out_dir))
    return marker is not None and marker.get("params") == synthetic_params(*args, **kwargs)


def ensure_synthetic_dataset(out_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> Path:
    """Returns ``out_dir`` after generating the dataset there unless it is already complete
    (the parameters: those of :func:`synthetic_params`).

    "Complete" means the marker written at the end of :func:`generate_synthetic_dataset` exists
    with the same parameters and generator version. When only the test split is missing (a
    dataset of the first release) or has another size, only the test split is generated.
    """
    update_synthetic_dataset(out_dir, *args, **kwargs)
    return Path(out_dir)


def update_synthetic_dataset(out_dir: str | os.PathLike, *args: Any, **kwargs: Any) -> dict | None:
    """:func:`ensure_synthetic_dataset`, returning what it generated: ``None`` when the dataset
    was complete, else the summary of :func:`generate_synthetic_dataset` (the splits kept from
    before included, as their marker recorded them)."""
    out = Path(out_dir)
    params = synthetic_params(*args, **kwargs)
    marker = _read_marker(out)
    if marker is not None and marker.get("params") == params:
        return None
    if (marker is not None and isinstance(marker.get("params"), dict)
            and _without_test(marker["params"]) == _without_test(params)
            and all(split in marker.get("splits", {}) for split in _BASE_SPLITS)):
        return _add_test_split(out, params, marker)
    return _generate(out, params)
