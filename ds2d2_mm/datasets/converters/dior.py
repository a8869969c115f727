"""DIOR (official layout, VOC-style horizontal boxes) to COCO json conversion.

Expected layout under ``root``::

    JPEGImages-trainval/<id>.jpg
    JPEGImages-test/<id>.jpg
    Annotations/Horizontal Bounding Boxes/<id>.xml   (or Annotations/<id>.xml)
    ImageSets/Main/{train,val,test}.txt              (trainval = train + val)

COCO ``file_name`` entries are relative to ``root`` (``JPEGImages-trainval/00001.jpg``), so a
config uses ``data_root=<root>`` and ``data_prefix=dict(img='')``. Boxes are
``[xmin, ymin, xmax - xmin, ymax - ymin]`` in the XML's pixel coordinates.

Bad objects cost the object, never the image: a box crossing the image edge is clipped to the
image (its decoded size), and a box with no width or height left (``xmin = xmax``, a zero-size
box, one outside the image) is dropped; the image and its other objects are kept. Each repaired
or dropped object is listed (file, line, object index, what was done) in the returned summary and
in ``conversion_report.json`` next to the json files. ``strict=True`` (``--strict``) stops at the
first object that would be dropped instead. An unreadable image or XML file stops the run (or is
skipped, with ``skip_bad``); a missing folder or image list always stops it, and so does a split
that would be written with no image (then no file is written).

The class order (COCO category ids 1..20) is the DIOR paper's; MMRotate's ``DIORDataset`` orders
three classes differently (see :data:`~ds2d2_mm.datasets.classes.DIOR_CLASSES`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ...utils.errors import AnnotationError, DatasetLayoutError, ImageError
from ..classes import DIOR_CLASSES, ClassIndex
from .common import (
    CocoBuilder,
    ObjectLog,
    clip_box,
    describe,
    run_tasks,
    write_coco_files,
    write_report,
)
from .xml_lines import XmlElement, read_xml

__all__ = [
    "DIOR_SPLITS",
    "DiorAnnotation",
    "DiorObject",
    "convert_dior",
    "find_annotation_dir",
    "parse_dior_xml",
    "read_dior_split",
]

#: Splits ``convert_dior`` knows; ``trainval`` is ``train`` followed by ``val``.
DIOR_SPLITS = ("trainval", "test", "train", "val")
_HBB_DIR = Path("Annotations") / "Horizontal Bounding Boxes"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_LISTED = 8


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
    difficult = int(_number(obj, "difficult", path)) if obj.find("difficult") is not None else 0
    return DiorObject(label=label, box=box, difficult=difficult, line=obj.line)


def parse_dior_xml(
    path: str | os.PathLike, classes: Sequence[str] = DIOR_CLASSES
) -> DiorAnnotation:
    """Reads one VOC-style DIOR annotation file.

    Class names are matched case-insensitively and ignoring surrounding spaces.

    Raises:
        AnnotationError: Malformed XML, a missing or non-positive ``<size>``, an object without
            name or box, a non-numeric coordinate or an unknown class (naming the file and
            line). Boxes are returned as written; the converter checks them against the image.
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
        DatasetLayoutError: When a needed list file is missing or the split is unknown.
    """
    main = Path(root) / "ImageSets" / "Main"
    if split not in DIOR_SPLITS:
        raise DatasetLayoutError(main, f"unknown split {split!r}; choose from {DIOR_SPLITS}")
    parts = ["train", "val"] if split == "trainval" else [split]
    only_trainval = not (main / "train.txt").exists() and (main / "trainval.txt").exists()
    if split == "trainval" and only_trainval:
        parts = ["trainval"]
    ids: dict[str, None] = {}
    for part in parts:
        list_file = main / f"{part}.txt"
        if not list_file.is_file():
            raise DatasetLayoutError(list_file, f"image list of split {part!r} not found "
                                     f"({_contents(main)})")
        for line in list_file.read_text().splitlines():
            if line.strip():
                ids.setdefault(line.split()[0], None)
    return list(ids)


def _contents(folder: Path) -> str:
    """What ``folder`` holds, for a message: ``'<folder> holds a/, b.txt'`` (a few names)."""
    if not folder.is_dir():
        parent = next((p for p in folder.parents if p.is_dir()), None)
        if parent is None:
            return f"{folder} does not exist"
        return f"{folder} does not exist; {_contents(parent)}"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return f"{folder} is empty"
    shown = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more"
                                           if len(names) > _LISTED else "")
    return f"{folder} holds {shown}"


def find_annotation_dir(root: str | os.PathLike) -> Path:
    """The folder of the horizontal-box XML files: ``Annotations/Horizontal Bounding Boxes/``
    of the release, or ``Annotations/`` when the XML files lie there directly.

    Raises:
        DatasetLayoutError: Neither holds XML files; the message names the folder looked for
            and what ``Annotations/`` (or the root) holds, and says so when only the oriented
            annotations are there.
    """
    root = Path(root)
    hbb, ann = root / _HBB_DIR, root / "Annotations"
    if hbb.is_dir():
        return hbb
    if ann.is_dir() and any(ann.glob("*.xml")):
        return ann
    hint = ""
    if ann.is_dir() and any(p.is_dir() and "oriented" in p.name.lower() for p in ann.iterdir()):
        hint = ("; that is the oriented-box annotation of the release, and this converter reads "
                f"the horizontal boxes: unpack the release's '{_HBB_DIR.as_posix()}' folder too")
    raise DatasetLayoutError(hbb, f"DIOR's horizontal-box annotation folder not found (looked for "
                             f"{hbb}/ and for <id>.xml files in {ann}/): "
                             f"{_contents(ann)}{hint}")


def _image_dir(root: Path, split: str) -> Path:
    return root / ("JPEGImages-test" if split == "test" else "JPEGImages-trainval")


def _find_image(root: Path, split: str, image_id: str) -> Path:
    folder = _image_dir(root, split)
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
    """One image's record and what was noticed on the way."""

    record: _ImageRecord
    size_mismatch: str | None = None
    objects: list[dict] = field(default_factory=list)  # ObjectLog entries


@dataclass(frozen=True)
class _Task:
    root: Path
    ann_dir: Path
    split: str
    image_id: str
    strict: bool


def _load_image(task: _Task) -> _Loaded:
    """Parses one image's XML, decodes the image file and clips the boxes to its real size
    (worker function)."""
    root = task.root
    xml_path = task.ann_dir / f"{task.image_id}.xml"
    if not xml_path.is_file():
        raise AnnotationError(xml_path, "annotation file not found")
    ann = parse_dior_xml(xml_path)
    image_path = _find_image(root, task.split, task.image_id)
    width, height = _image_size(image_path)
    size_mismatch = None
    if (width, height) != (ann.width, ann.height):
        size_mismatch = (f"{image_path.relative_to(root)}: xml {ann.width}x{ann.height}, "
                         f"file {width}x{height}")
    log = ObjectLog(strict=task.strict)
    objects = []
    for index, obj in enumerate(ann.objects, start=1):
        box, problem = clip_box(obj.box, width, height)
        if box is None:
            log.dropped(ann.path, obj.line, index, problem)
            continue
        if problem is not None:
            log.clipped(ann.path, obj.line, index, problem, box)
        objects.append(DiorObject(obj.label, box, obj.difficult, obj.line))
    record = _ImageRecord(image_path.relative_to(root).as_posix(), width, height, objects)
    return _Loaded(record=record, size_mismatch=size_mismatch, objects=log.entries)


def _image_folder(split: str) -> str:
    return "test" if split == "test" else "trainval"


def _to_coco(records: list[_ImageRecord]) -> CocoBuilder:
    coco = CocoBuilder(DIOR_CLASSES)
    for rec in records:
        image_id = coco.add_image(rec.file_name, rec.width, rec.height)
        for obj in rec.objects:
            x1, y1, x2, y2 = obj.box
            w, h = x2 - x1, y2 - y1
            coco.add_object(image_id, obj.label, [x1, y1, w, h], w * h,
                            difficult=obj.difficult)
    return coco


def convert_dior(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Sequence[str] = ("trainval", "test"),
    skip_bad: bool = False,
    progress: bool = True,
    nproc: int = 1,
    strict: bool = False,
) -> dict:
    """Converts DIOR to one COCO json per split (``<out_dir>/<split>.json``) and writes
    ``<out_dir>/conversion_report.json``.

    Every image is decoded in full (in ``nproc`` worker processes), so a truncated or corrupt file
    stops the conversion (or is skipped with ``skip_bad``) instead of training on half an image.
    Boxes are clipped to the image, and those left without width or height dropped, per object
    (see the module docstring).

    Args:
        root: The DIOR root folder (official layout, see the module docstring).
        out_dir: Where the json files go (created when missing).
        splits: Any of ``trainval``, ``test``, ``train``, ``val``.
        skip_bad: Skip (and list) images whose annotation or image file is unreadable instead of
            stopping at the first one.
        progress: Show tqdm progress bars.
        nproc: Worker processes that parse and decode.
        strict: Stop at the first object that would be dropped (or, with ``skip_bad``, skip its
            image), as the converter did before objects were repaired one by one.

    Returns:
        A summary: per split ``images``/``objects``/``json``, ``skipped`` (list of messages),
        ``size_mismatches`` (list), ``boxes_clipped`` and ``objects_dropped`` (counts),
        ``repaired_objects`` (one line per clipped or dropped object) and ``report`` (the path
        of the json report).

    Raises:
        DatasetLayoutError: A missing annotation or image folder, image list, or a split that
            would hold no image (nothing is written then).
        DatasetError: A missing annotation or image, or a malformed annotation (unless
            ``skip_bad``).
    """
    root, out_dir = Path(root), Path(out_dir)
    split_ids = {split: read_dior_split(root, split) for split in splits}
    ann_dir = find_annotation_dir(root)
    for split in splits:
        folder = _image_dir(root, split)
        if not folder.is_dir():
            raise DatasetLayoutError(folder, f"image folder of split {split!r} not found: "
                                     f"{_contents(root)}")
    keys: dict[tuple[str, str], _Task] = {}
    for split, ids in split_ids.items():
        for image_id in ids:
            keys.setdefault((_image_folder(split), image_id),
                            _Task(root, ann_dir, split, image_id, strict))
    tasks = list(keys.values())
    cache: dict[tuple[str, str], _ImageRecord | None] = {}
    skipped: list[str] = []
    size_mismatches: list[str] = []
    entries: list[dict] = []
    for index, loaded, error in run_tasks(_load_image, tasks, nproc=nproc,
                                          desc="DIOR: annotations and images", unit="img",
                                          progress=progress, chunksize=16):
        task = tasks[index]
        key = (_image_folder(task.split), task.image_id)
        if error is not None:
            if not skip_bad:
                raise error
            skipped.append(str(error))
            cache[key] = None
            continue
        if loaded.size_mismatch:
            size_mismatches.append(loaded.size_mismatch)
        entries += loaded.objects
        cache[key] = loaded.record
    summary: dict = {"splits": {}}
    files: dict[Path, CocoBuilder] = {}
    for split, ids in split_ids.items():
        records = [r for i in ids if (r := cache[(_image_folder(split), i)]) is not None]
        coco = _to_coco(records)
        json_path = out_dir / f"{split}.json"
        if not coco.images:
            why = (f"all {len(ids)} images of split {split!r} were skipped (first: "
                   f"{skipped[0]})" if ids and skipped else
                   f"the image list of split {split!r} is empty")
            raise DatasetLayoutError(json_path, f"no image to write: {why}; no file was written")
        files[json_path] = coco
        summary["splits"][split] = {"images": len(coco.images),
                                    "objects": len(coco.annotations), "json": str(json_path)}
    write_coco_files(files)
    summary.update({
        "size_mismatches": size_mismatches,
        "boxes_clipped": sum(e["action"] == "clipped" for e in entries),
        "objects_dropped": sum(e["action"] == "dropped" for e in entries),
        "skipped": skipped,
        "repaired_objects": [describe(e) for e in entries],
    })
    report = write_report(out_dir, {
        "tool": "DIOR -> COCO", "root": str(root), "strict": strict, "skip_bad": skip_bad,
        "splits": summary["splits"], "skipped": skipped, "size_mismatches": size_mismatches,
        "objects": entries})
    summary["report"] = str(report)
    return summary
