"""DIOR (official layout, VOC-style horizontal boxes) to COCO json conversion.

Expected layout under ``root``::

    JPEGImages-trainval/<id>.jpg
    JPEGImages-test/<id>.jpg
    Annotations/Horizontal Bounding Boxes/<id>.xml   (or Annotations/<id>.xml)
    ImageSets/Main/{train,val,test}.txt              (trainval = train + val)

COCO ``file_name`` entries are relative to ``root`` (``JPEGImages-trainval/00001.jpg``), so a
config uses ``data_root=<root>`` and ``data_prefix=dict(img='')``. Boxes are
``[xmin, ymin, xmax - xmin, ymax - ymin]`` in the XML's pixel coordinates, clipped to the image.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ...utils.errors import AnnotationError, DatasetError, ImageError
from ...utils.io import atomic_write_json
from ..classes import DIOR_CLASSES, ClassIndex, coco_categories
from .parallel import die_with_parent
from .xml_lines import XmlElement, read_xml

__all__ = [
    "DIOR_SPLITS",
    "DiorAnnotation",
    "DiorObject",
    "convert_dior",
    "parse_dior_xml",
    "read_dior_split",
]

#: Splits ``convert_dior`` knows; ``trainval`` is ``train`` followed by ``val``.
DIOR_SPLITS = ("trainval", "test", "train", "val")
_HBB_DIR = Path("Annotations") / "Horizontal Bounding Boxes"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


@dataclass
class DiorObject:
    """One annotated object: 0-based class index, ``(xmin, ymin, xmax, ymax)`` and VOC difficult."""

    label: int
    box: tuple[float, float, float, float]
    difficult: int
    line: int


@dataclass
class DiorAnnotation:
    """The content of one DIOR XML file (image size as written in ``<size>``)."""

    path: str
    width: int
    height: int
    objects: list[DiorObject] = field(default_factory=list)


def _number(parent: XmlElement, tag: str, path: str | os.PathLike) -> float:
    element = parent.find(tag)
    if element is None:
        raise AnnotationError(path, f"<{parent.tag}> has no <{tag}>", line=parent.line)
    try:
        return float(element.text)
    except ValueError:
        raise AnnotationError(path, f"<{tag}> is not a number: {element.text!r}",
                              line=element.line) from None


def _parse_object(obj: XmlElement, path: str | os.PathLike, classes: ClassIndex) -> DiorObject:
    name = obj.find("name")
    if name is None or not name.text:
        raise AnnotationError(path, "<object> has no <name>", line=obj.line)
    label = classes.get(name.text)
    if label is None:
        raise AnnotationError(
            path,
            f"unknown class {name.text!r}; expected one of {', '.join(classes.classes)}",
            line=name.line,
        )
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise AnnotationError(path, "<object> has no <bndbox>", line=obj.line)
    box = tuple(_number(bndbox, k, path) for k in ("xmin", "ymin", "xmax", "ymax"))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise AnnotationError(path, f"empty box (xmin, ymin, xmax, ymax) = {box}",
                              line=bndbox.line)
    difficult = int(_number(obj, "difficult", path)) if obj.find("difficult") is not None else 0
    return DiorObject(label=label, box=box, difficult=difficult, line=obj.line)


def parse_dior_xml(
    path: str | os.PathLike, classes: Sequence[str] = DIOR_CLASSES
) -> DiorAnnotation:
    """Reads one VOC-style DIOR annotation file.

    Class names are matched case-insensitively and ignoring surrounding spaces.

    Raises:
        AnnotationError: Malformed XML, a missing or non-positive ``<size>``, an object without
            name or box, an empty box or an unknown class (naming the file and line).
    """
    root = read_xml(path)
    size = root.find("size")
    if size is None:
        raise AnnotationError(path, "no <size> element; the image size is required",
                              line=root.line)
    width, height = int(_number(size, "width", path)), int(_number(size, "height", path))
    if width <= 0 or height <= 0:
        raise AnnotationError(path, f"non-positive image size {width}x{height}", line=size.line)
    index = ClassIndex(classes)
    objects = [_parse_object(obj, path, index) for obj in root.findall("object")]
    return DiorAnnotation(path=str(path), width=width, height=height, objects=objects)


def read_dior_split(root: str | os.PathLike, split: str) -> list[str]:
    """Image ids of ``split`` from ``ImageSets/Main`` (``trainval`` = train + val, no repeats).

    Raises:
        DatasetError: When a needed list file is missing or the split is unknown.
    """
    main = Path(root) / "ImageSets" / "Main"
    if split not in DIOR_SPLITS:
        raise DatasetError(main, f"unknown split {split!r}; choose from {DIOR_SPLITS}")
    parts = ["train", "val"] if split == "trainval" else [split]
    only_trainval = not (main / "train.txt").exists() and (main / "trainval.txt").exists()
    if split == "trainval" and only_trainval:
        parts = ["trainval"]
    ids: dict[str, None] = {}
    for part in parts:
        list_file = main / f"{part}.txt"
        if not list_file.is_file():
            raise DatasetError(list_file, f"image list of split {part!r} not found")
        for line in list_file.read_text().splitlines():
            if line.strip():
                ids.setdefault(line.split()[0], None)
    return list(ids)


def _annotation_dir(root: Path) -> Path:
    return root / _HBB_DIR if (root / _HBB_DIR).is_dir() else root / "Annotations"


def _find_image(root: Path, split: str, image_id: str) -> Path:
    folder = root / ("JPEGImages-test" if split == "test" else "JPEGImages-trainval")
    for suffix in _IMAGE_SUFFIXES:
        candidate = folder / f"{image_id}{suffix}"
        if candidate.is_file():
            return candidate
    raise ImageError(folder / f"{image_id}.jpg", "image file not found")


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image at ``path``, decoded in full so that a truncated or corrupt
    file is caught here rather than half-decoded at training time."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.size
    except Exception as err:  # PIL raises several types for unreadable files
        raise ImageError(path, f"cannot decode image ({err})") from None


@dataclass
class _ImageRecord:
    file_name: str
    width: int
    height: int
    objects: list[DiorObject]


@dataclass
class _Loaded:
    """One image's record, or the error that stopped it, and what was noticed on the way."""

    key: tuple[str, str]
    record: _ImageRecord | None = None
    error: DatasetError | None = None
    size_mismatch: str | None = None
    boxes_clipped: int = 0


def _load_image(root: Path, split: str, image_id: str) -> _Loaded:
    """Parses one image's XML, decodes the image file and clips the boxes to its real size."""
    loaded = _Loaded(key=(_image_folder(split), image_id))
    xml_path = _annotation_dir(root) / f"{image_id}.xml"
    if not xml_path.is_file():
        raise AnnotationError(xml_path, "annotation file not found")
    ann = parse_dior_xml(xml_path)
    image_path = _find_image(root, split, image_id)
    width, height = _image_size(image_path)
    if (width, height) != (ann.width, ann.height):
        loaded.size_mismatch = (f"{image_path.relative_to(root)}: xml {ann.width}x{ann.height}, "
                                f"file {width}x{height}")
    objects = []
    for obj in ann.objects:
        x1, y1 = max(obj.box[0], 0.0), max(obj.box[1], 0.0)
        x2, y2 = min(obj.box[2], float(width)), min(obj.box[3], float(height))
        if x2 <= x1 or y2 <= y1:
            raise AnnotationError(ann.path, f"box {obj.box} lies outside the {width}x{height} "
                                  "image", line=obj.line)
        if (x1, y1, x2, y2) != obj.box:
            loaded.boxes_clipped += 1
        objects.append(DiorObject(obj.label, (x1, y1, x2, y2), obj.difficult, obj.line))
    loaded.record = _ImageRecord(image_path.relative_to(root).as_posix(), width, height, objects)
    return loaded


def _image_folder(split: str) -> str:
    return "test" if split == "test" else "trainval"


def _load_task(task: tuple[Path, str, str]) -> _Loaded:
    root, split, image_id = task
    try:
        return _load_image(root, split, image_id)
    except DatasetError as err:
        return _Loaded(key=(_image_folder(split), image_id), error=err)


def _init_worker(parent: int) -> None:
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _to_coco(records: list[_ImageRecord]) -> dict:
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": rec.file_name, "width": rec.width,
                       "height": rec.height})
        for obj in rec.objects:
            x1, y1, x2, y2 = obj.box
            w, h = x2 - x1, y2 - y1
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": obj.label + 1, "bbox": [x1, y1, w, h], "area": w * h,
                "iscrowd": 0, "difficult": obj.difficult,
            })
    return {"images": images, "annotations": annotations,
            "categories": coco_categories(DIOR_CLASSES)}


def convert_dior(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Sequence[str] = ("trainval", "test"),
    skip_bad: bool = False,
    progress: bool = True,
    nproc: int = 1,
) -> dict:
    """Converts DIOR to one COCO json per split (``<out_dir>/<split>.json``).

    Every image is decoded in full (in ``nproc`` worker processes), so a truncated or corrupt file
    stops the conversion (or is skipped with ``skip_bad``) instead of training on half an image.

    Args:
        root: The DIOR root folder (official layout, see the module docstring).
        out_dir: Where the json files go (created when missing).
        splits: Any of ``trainval``, ``test``, ``train``, ``val``.
        skip_bad: Skip (and count) images whose annotation or image file is bad instead of
            stopping at the first one.
        progress: Show tqdm progress bars.
        nproc: Worker processes that parse and decode.

    Returns:
        A summary: per split ``images``/``objects``/``json``, ``skipped`` (list of messages),
        ``size_mismatches`` (list) and ``boxes_clipped`` (count).

    Raises:
        DatasetError: A missing image list, annotation or image, or a malformed annotation
            (unless ``skip_bad``; missing image lists always raise).
    """
    root, out_dir = Path(root), Path(out_dir)
    stats: dict = {"size_mismatches": [], "boxes_clipped": 0, "skipped": []}
    split_ids = {split: read_dior_split(root, split) for split in splits}
    tasks: dict[tuple[str, str], tuple[Path, str, str]] = {}
    for split, ids in split_ids.items():
        for image_id in ids:
            tasks.setdefault((_image_folder(split), image_id), (root, split, image_id))
    cache: dict[tuple[str, str], _ImageRecord | None] = {}
    bar = dict(total=len(tasks), desc="DIOR: annotations and images", disable=not progress,
               unit="img")
    with contextlib.ExitStack() as stack:
        if nproc > 1 and len(tasks) > 1:
            pool = stack.enter_context(Pool(min(nproc, len(tasks)), initializer=_init_worker,
                                            initargs=(os.getpid(),)))
            results = pool.imap(_load_task, tasks.values(), chunksize=16)
        else:
            results = map(_load_task, tasks.values())
        for loaded in tqdm(results, **bar):
            if loaded.error is not None:
                if not skip_bad:
                    raise loaded.error
                stats["skipped"].append(str(loaded.error))
            if loaded.size_mismatch:
                stats["size_mismatches"].append(loaded.size_mismatch)
            stats["boxes_clipped"] += loaded.boxes_clipped
            cache[loaded.key] = loaded.record
    summary: dict = {"splits": {}}
    for split, ids in split_ids.items():
        records = [r for i in ids if (r := cache[(_image_folder(split), i)]) is not None]
        coco = _to_coco(records)
        json_path = out_dir / f"{split}.json"
        atomic_write_json(json_path, coco)
        summary["splits"][split] = {"images": len(coco["images"]),
                                    "objects": len(coco["annotations"]), "json": str(json_path)}
    summary.update(stats)
    return summary
