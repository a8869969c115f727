"""DroneVehicle (VisDrone's RGB-infrared vehicle dataset) to paired COCO json conversion.

Official layout under ``root`` (as the archives unpack)::

    train/trainimg/00001.jpg    RGB, 840x712 (a 100 px white border around 640x512)
    train/trainimgr/00001.jpg   infrared, same name, same size
    train/trainlabel/00001.xml  VOC-style labels of the RGB image
    train/trainlabelr/00001.xml VOC-style labels of the infrared image
    val/val{img,imgr,label,labelr}/...   test/test{img,imgr,label,labelr}/...

An ``<object>`` has a ``<name>`` and either ``<polygon>`` (``<x1>..<y4>``, an oriented box, most
objects) or ``<bndbox>`` (``<xmin>..<ymax>``). The names come spelled several ways: ``feright
car``, ``feright_car``, ``feright`` (freight car), ``truvk`` (truck); :data:`CLASS_ALIASES` maps
them onto :data:`~ds2d2_mm.datasets.classes.DRONEVEHICLE_CLASSES`. A few objects carry the name
``*`` or no geometry at all: they are dropped and listed in the summary; any other unknown name is
an error naming the file and line.

The RGB and infrared label sets differ (the infrared one has more objects: vehicles invisible in
night-time RGB images are labelled in infrared only). One set serves both modalities of a pair;
the default is the infrared set (``labels='ir'``), as the DroneVehicle papers evaluate on it.

Output: one COCO json per split (``<out>/annotations/<split>.json``) whose ``file_name`` is the
shared name of the pair. Each object has a horizontal ``bbox`` (the polygon's bounds) and its
polygon as ``segmentation``, so the same json serves horizontal-box configs (mmdet) and
oriented ones (mmrotate 1.x reads COCO polygons as rotated boxes with
``LoadAnnotations(with_mask=True, poly2mask=False)`` + ``ConvertMask2BoxType('rbox')``, as in its
HRSID / SSDD configs; its DOTA-style txt reader, ``DOTADataset``, takes one image folder and no
pairs). With ``crop_border`` (100 for the official border) the images are cropped and written to
``<out>/<split>/rgb/`` and ``<out>/<split>/ir/`` and the polygons are shifted and clipped to the
crop (an object wholly in the border is dropped); without it no image is written and the configs
read the official folders (``data_prefix=dict(rgb='train/trainimg/', ir='train/trainimgr/')``).

Bad objects cost the object, never the pair: a polygon is clipped to the image (to the crop with
``crop_border``), and one with no area left (a degenerate polygon or box, one outside the image or
wholly in the cut border) is dropped. Each repaired or dropped object is listed (file, line,
object index, what was done) in the summary and in ``annotations/conversion_report.json``;
``strict`` stops at the first degenerate or out-of-image object instead (objects in the cut
border are dropped by design). A split with no pair is an error, and then nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ...utils.errors import AnnotationError, DatasetLayoutError, ImageError
from ...utils.io import atomic_write_image
from ..classes import DRONEVEHICLE_CLASSES, ClassIndex
from .common import CocoBuilder, ObjectLog, describe, run_tasks, write_coco_files, write_report
from .xml_lines import XmlElement, read_xml

__all__ = [
    "CLASS_ALIASES",
    "DRONEVEHICLE_SPLITS",
    "LABEL_SETS",
    "DroneVehicleObject",
    "clip_polygon",
    "convert_dronevehicle",
    "parse_dronevehicle_xml",
]

#: Splits of the official release.
DRONEVEHICLE_SPLITS = ("train", "val", "test")
#: Label sets: the folder suffix of each (``trainlabel`` RGB, ``trainlabelr`` infrared).
LABEL_SETS = {"ir": "labelr", "rgb": "label"}
#: Image folder suffix per modality (``trainimg`` RGB, ``trainimgr`` infrared).
IMAGE_FOLDERS = {"rgb": "img", "ir": "imgr"}
#: Spellings met in the official XML files (normalised: lower case, '_' and '-' as spaces).
CLASS_ALIASES = {
    "car": "car",
    "truck": "truck",
    "truvk": "truck",
    "bus": "bus",
    "van": "van",
    "freight car": "freight_car",
    "feright car": "freight_car",
    "feright": "freight_car",
    "freightcar": "freight_car",
}
#: Names the official files use for objects that are not one of the classes (dropped, listed).
JUNK_NAMES = ("*",)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_QUAD_TAGS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def normalise_name(name: str) -> str:
    """``'Feright_Car '`` -> ``'feright car'``."""
    return " ".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


@dataclass
class DroneVehicleObject:
    """One object: 0-based class index, polygon ``[(x, y), ...]`` (4 corners as in the file) and
    the line of its ``<object>``."""

    label: int
    polygon: list[tuple[float, float]]
    line: int


@dataclass
class DroneVehicleAnnotation:
    """One XML file: its objects, the size in ``<size>`` (``None`` when absent) and the objects
    dropped (``file:line: reason``)."""

    path: str
    size: tuple[int, int] | None
    objects: list[DroneVehicleObject] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _numbers(parent: XmlElement, tags: Sequence[str], path: str | os.PathLike) -> list[float]:
    out = []
    for tag in tags:
        element = parent.find(tag)
        if element is None:
            raise AnnotationError(path, f"<{parent.tag}> has no <{tag}>", line=parent.line)
        try:
            out.append(float(element.text))
        except ValueError:
            raise AnnotationError(path, f"<{tag}> is not a number: {element.text!r}",
                                  line=element.line) from None
    return out


def _size(root: XmlElement, path: str | os.PathLike) -> tuple[int, int] | None:
    size = root.find("size")
    if size is None or size.find("width") is None or size.find("height") is None:
        return None
    width, height = (int(v) for v in _numbers(size, ("width", "height"), path))
    return (width, height) if width > 0 and height > 0 else None


def parse_dronevehicle_xml(path: str | os.PathLike) -> DroneVehicleAnnotation:
    """Read one DroneVehicle XML file (polygon and bndbox objects, the known misspellings).

    Raises:
        AnnotationError: Malformed XML, a non-numeric coordinate or an unknown class name (naming
            the file and line).
    """
    root = read_xml(path)
    index = ClassIndex(DRONEVEHICLE_CLASSES)
    ann = DroneVehicleAnnotation(path=str(path), size=_size(root, path))
    for obj in root.findall("object"):
        name = obj.find("name")
        raw = name.text if name is not None else ""
        if raw.strip() in JUNK_NAMES or not raw.strip():
            ann.dropped.append(f"{path}:{obj.line}: object named {raw!r}")
            continue
        canonical = CLASS_ALIASES.get(normalise_name(raw))
        if canonical is None:
            raise AnnotationError(
                path, f"unknown class {raw!r}; expected one of {', '.join(DRONEVEHICLE_CLASSES)} "
                f"(or a known spelling: {', '.join(sorted(CLASS_ALIASES))})", line=name.line)
        polygon, bndbox = obj.find("polygon"), obj.find("bndbox")
        if polygon is not None:
            xy = _numbers(polygon, _QUAD_TAGS, path)
            corners = list(zip(xy[0::2], xy[1::2], strict=True))
        elif bndbox is not None:
            x1, y1, x2, y2 = _numbers(bndbox, _BOX_TAGS, path)
            corners = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
        else:
            ann.dropped.append(f"{path}:{obj.line}: {raw!r} has neither <polygon> nor <bndbox>")
            continue
        ann.objects.append(DroneVehicleObject(index.get(canonical), corners, obj.line))
    return ann


def clip_polygon(polygon: Sequence[tuple[float, float]], width: float,
                 height: float) -> list[tuple[float, float]]:
    """The part of a convex or simple ``polygon`` inside ``[0, width] x [0, height]``
    (Sutherland-Hodgman); ``[]`` when nothing is inside."""
    def clip(points, inside, cross):
        out = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        return out

    def at_x(x):
        return lambda p, q: (x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]))

    def at_y(y):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y)

    points = [(float(x), float(y)) for x, y in polygon]
    for inside, cross in ((lambda p: p[0] >= 0, at_x(0.0)),
                          (lambda p: p[0] <= width, at_x(float(width))),
                          (lambda p: p[1] >= 0, at_y(0.0)),
                          (lambda p: p[1] <= height, at_y(float(height)))):
        points = clip(points, inside, cross)
        if not points:
            return []
    return points


def _area(polygon: Sequence[tuple[float, float]]) -> float:
    """Shoelace area of ``polygon``."""
    xy = np.asarray(polygon, np.float64)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@dataclass
class _Task:
    root: Path
    split: str
    stem: str
    labels: str
    crop_border: int
    out: Path | None
    strict: bool = False


@dataclass
class _Record:
    file_name: str
    width: int
    height: int
    objects: list[tuple[int, list[tuple[float, float]]]]


@dataclass
class _Loaded:
    record: _Record
    dropped: list[str] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)  # ObjectLog entries
    outside: int = 0
    size_mismatch: str | None = None


def _folder(root: Path, split: str, kind: str) -> Path:
    return root / split / f"{split}{kind}"


def _find_image(folder: Path, stem: str) -> Path:
    for suffix in _IMAGE_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise ImageError(folder / f"{stem}.jpg", "image file not found (the other modality of the "
                     "pair has it)")


def _read(path: Path) -> np.ndarray:
    """The decoded image (file's channels and depth)."""
    data = np.fromfile(path, np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageError(path, "cannot decode image (corrupt or not an image file)")
    return img


def _load(task: _Task) -> _Loaded:
    """Parse one pair's XML, decode both images, crop and write them, clip the polygons
    (worker function)."""
    xml = _folder(task.root, task.split, LABEL_SETS[task.labels]) / f"{task.stem}.xml"
    if not xml.is_file():
        raise AnnotationError(xml, f"annotation file not found ({task.labels} labels)")
    ann = parse_dronevehicle_xml(xml)
    loaded = _Loaded(record=None, dropped=ann.dropped)
    paths = {m: _find_image(_folder(task.root, task.split, kind), task.stem)
             for m, kind in IMAGE_FOLDERS.items()}
    images = {m: _read(p) for m, p in paths.items()}
    (h, w), (h_ir, w_ir) = images["rgb"].shape[:2], images["ir"].shape[:2]
    if (h, w) != (h_ir, w_ir):
        raise ImageError(paths["ir"], f"infrared image is {w_ir}x{h_ir} but the RGB image "
                         f"{paths['rgb']} is {w}x{h}; a pair must have one size")
    if ann.size is not None and ann.size != (w, h):
        loaded.size_mismatch = f"{xml}: xml {ann.size[0]}x{ann.size[1]}, images {w}x{h}"
    b = task.crop_border
    if b and (2 * b >= w or 2 * b >= h):
        raise ImageError(paths["rgb"], f"crop_border={b} leaves nothing of a {w}x{h} image")
    width, height = w - 2 * b, h - 2 * b
    log = ObjectLog(strict=task.strict)
    objects = []
    for index, obj in enumerate(ann.objects, start=1):
        written = _fmt_polygon(obj.polygon)
        if _area(obj.polygon) <= 0:
            log.dropped(xml, obj.line, index, f"polygon {written} has no area")
            continue
        in_image = clip_polygon(obj.polygon, w, h)
        if len(in_image) < 3 or _area(in_image) <= 0:
            log.dropped(xml, obj.line, index, f"polygon {written} lies outside the {w}x{h} image")
            continue
        shifted = [(x - b, y - b) for x, y in obj.polygon]
        clipped = clip_polygon(shifted, width, height)
        if len(clipped) < 3 or _area(clipped) <= 0:
            loaded.outside += 1
            log.entries.append({"file": str(xml), "line": obj.line, "object": index,
                                "problem": f"polygon {written} lies in the {b} px border cut "
                                "away", "action": "dropped"})
            continue
        if clipped != shifted:
            edge = f"the {b} px border crop" if b else f"the edge of the {w}x{h} image"
            log.clipped(xml, obj.line, index, f"polygon {written} crosses {edge}",
                        [v for p in clipped for v in p])
        objects.append((obj.label, clipped))
    loaded.objects = log.entries
    file_name = paths["ir"].name if paths["ir"].suffix == paths["rgb"].suffix else None
    if file_name is None:
        raise ImageError(paths["ir"], f"the pair's files differ in format ({paths['rgb'].name}, "
                         f"{paths['ir'].name}); one json file_name serves both")
    if task.out is not None:
        for modality, img in images.items():
            atomic_write_image(task.out / task.split / modality / file_name,
                               img[b:h - b, b:w - b] if b else img)
    loaded.record = _Record(file_name, width, height, objects)
    return loaded


def _fmt_polygon(polygon: Sequence[tuple[float, float]]) -> str:
    return "[" + ", ".join(f"({x:g}, {y:g})" for x, y in polygon) + "]"


def _to_coco(records: list[_Record]) -> CocoBuilder:
    coco = CocoBuilder(DRONEVEHICLE_CLASSES)
    for rec in records:
        image_id = coco.add_image(rec.file_name, rec.width, rec.height)
        for label, polygon in rec.objects:
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            x1, y1 = min(xs), min(ys)
            w, h = max(xs) - x1, max(ys) - y1
            coco.add_object(image_id, label, [x1, y1, w, h], w * h,
                            segmentation=[[round(v, 2) for p in polygon for v in p]])
    return coco


def _stems(root: Path, split: str) -> list[str]:
    """Names of the pairs of ``split``: the infrared image folder's files."""
    folder = _folder(root, split, IMAGE_FOLDERS["ir"])
    if not folder.is_dir():
        raise DatasetLayoutError(folder, f"image folder of split {split!r} not found "
                                 f"(official layout: <root>/{split}/{split}img/, {split}imgr/, "
                                 f"{split}label/, {split}labelr/)")
    return sorted(p.stem for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)


def convert_dronevehicle(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Sequence[str] = DRONEVEHICLE_SPLITS,
    labels: str = "ir",
    crop_border: int = 0,
    skip_bad: bool = False,
    progress: bool = True,
    nproc: int = 1,
    strict: bool = False,
) -> dict:
    """Convert DroneVehicle to one paired COCO json per split (see the module docstring).

    Args:
        root: The DroneVehicle root (official layout).
        out_dir: Output root: ``annotations/<split>.json`` (and ``conversion_report.json``)
            and, with ``crop_border``, the cropped images in ``<split>/rgb/`` and ``<split>/ir/``.
        splits: Any of ``train``, ``val``, ``test``.
        labels: The label set of both modalities: ``'ir'`` (default) or ``'rgb'``.
        crop_border: Pixels cut from every side (100 removes the official white border); 0 keeps
            the images where they are.
        skip_bad: Skip (and list) pairs with an unreadable XML or image instead of stopping.
        progress: Show a tqdm progress bar.
        nproc: Worker processes.
        strict: Stop at the first degenerate or out-of-image object instead of dropping it.

    Returns:
        A summary: per split ``images`` / ``objects`` / ``json`` / ``data_prefix``, and
        ``labels``, ``skipped`` (messages naming the files), ``dropped_objects`` (objects without
        a class or geometry), ``objects_clipped``, ``objects_outside_crop``, ``objects_dropped``
        (counts), ``repaired_objects`` (one line per clipped or dropped object),
        ``size_mismatches`` and ``report``.

    Raises:
        DatasetLayoutError: A missing split folder, or a split with no pair (nothing written).
        DatasetError: Without ``skip_bad``, the first bad file.
        ValueError: An unknown split or label set, or a negative ``crop_border``.
    """
    if labels not in LABEL_SETS:
        raise ValueError(f"labels must be one of {sorted(LABEL_SETS)}, got {labels!r}")
    unknown = [s for s in splits if s not in DRONEVEHICLE_SPLITS]
    if unknown:
        raise ValueError(f"unknown splits {unknown}; choose from {DRONEVEHICLE_SPLITS}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    root, out_dir = Path(root), Path(out_dir)
    summary: dict = {"labels": f"{labels} ({root}/<split>/<split>{LABEL_SETS[labels]}/)",
                     "splits": {}}
    stats: dict = {"skipped": [], "dropped_objects": [], "size_mismatches": []}
    entries: list[dict] = []
    outside = 0
    split_stems = {split: _stems(root, split) for split in splits}
    image_out = out_dir if crop_border else None
    files: dict[Path, CocoBuilder] = {}
    for split, stems in split_stems.items():
        tasks = [_Task(root, split, s, labels, crop_border, image_out, strict) for s in stems]
        records = []
        for _, loaded, error in run_tasks(_load, tasks, nproc=nproc, desc=f"DroneVehicle {split}",
                                          unit="pair", progress=progress, chunksize=8):
            if error is not None:
                if not skip_bad:
                    raise error
                stats["skipped"].append(str(error))
                continue
            stats["dropped_objects"] += loaded.dropped
            entries += loaded.objects
            outside += loaded.outside
            if loaded.size_mismatch:
                stats["size_mismatches"].append(loaded.size_mismatch)
            records.append(loaded.record)
        coco = _to_coco(records)
        json_path = out_dir / "annotations" / f"{split}.json"
        if not coco.images:
            why = (f"all {len(stems)} pairs of split {split!r} were skipped (first: "
                   f"{stats['skipped'][-1]})" if stems and stats["skipped"] else
                   f"{_folder(root, split, IMAGE_FOLDERS['ir'])} holds no image")
            raise DatasetLayoutError(json_path, f"no image to write: {why}; no json was written")
        files[json_path] = coco
        prefix = ({m: f"{split}/{m}/" for m in IMAGE_FOLDERS} if crop_border else
                  {m: f"{split}/{split}{kind}/" for m, kind in IMAGE_FOLDERS.items()})
        summary["splits"][split] = {
            "images": len(coco.images), "objects": len(coco.annotations),
            "json": str(json_path),
            "data_prefix": f"data_root={str(out_dir if crop_border else root)!r}, "
                           f"data_prefix=dict(rgb={prefix['rgb']!r}, ir={prefix['ir']!r})"}
    write_coco_files(files)
    summary.update(stats)
    summary.update({
        "objects_clipped": sum(e["action"] == "clipped" for e in entries),
        "objects_outside_crop": outside,
        "objects_dropped": sum(e["action"] == "dropped" for e in entries) - outside,
        "repaired_objects": [describe(e) for e in entries],
    })
    report = write_report(out_dir / "annotations", {
        "tool": "DroneVehicle -> paired COCO", "root": str(root), "labels": labels,
        "crop_border": crop_border, "strict": strict, "skip_bad": skip_bad,
        "splits": summary["splits"], "skipped": stats["skipped"],
        "dropped_objects": stats["dropped_objects"], "size_mismatches": stats["size_mismatches"],
        "objects": entries})
    summary["report"] = str(report)
    return summary
