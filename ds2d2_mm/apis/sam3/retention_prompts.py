"""Prompts for the output-retention check of a full SAM3 image model: read, generate, validate.

A prompt file (JSON, or YAML by its extension ``.yaml`` / ``.yml``) holds any of three parts::

    {"text":   ["ship", "airplane"],                        # concept prompts, run on every image
     "boxes":  {"img.png": [[x1, y1, x2, y2], ...]},        # pixel boxes per image name
     "points": {"img.png": [[[x, y]], [[x, y], [x, y, 0]], ...]}}  # one point list per instance

Image names are file names inside the image folder. A point is ``[x, y]`` (a positive click) or
``[x, y, label]`` with label 1 (positive) or 0 (negative); each inner list is one prompt (one
instance). Coordinates are pixels of the original image.

:func:`prompts_from_coco` generates the same structure from a COCO annotation file: its category
names as text prompts, each annotation's box as a box prompt and the box centre as a single
positive point prompt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "PromptError",
    "check_prompts_fit_images",
    "PromptSet",
    "load_prompt_file",
    "prompt_set_from_dict",
    "prompts_from_coco",
]

#: Point labels SAM understands for clicks: background and foreground.
POINT_LABELS = (0, 1)
#: Default cap on the generated box / point prompts per image.
DEFAULT_MAX_PER_IMAGE = 10


class PromptError(ValueError):
    """A prompt file (or COCO file) that is missing or malformed; the message names file and key."""


@dataclass
class PromptSet:
    """The prompts of a retention run.

    Attributes:
        text: Concept prompts, each run on every image.
        boxes: Image name -> boxes, each ``[x1, y1, x2, y2]`` in pixels.
        points: Image name -> instances, each a list of ``[x, y, label]`` clicks (label 0 / 1).
    """

    text: list[str] = field(default_factory=list)
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)
    points: dict[str, list[list[list[float]]]] = field(default_factory=dict)

    def image_names(self) -> list[str]:
        """The image names the box and point prompts refer to, sorted."""
        return sorted(set(self.boxes) | set(self.points))

    def is_empty(self) -> bool:
        """Whether there is no prompt at all."""
        return not (self.text or any(self.boxes.values()) or any(self.points.values()))

    def to_dict(self) -> dict[str, Any]:
        """The prompt-file form of this set (what :func:`load_prompt_file` reads back)."""
        return {"text": list(self.text), "boxes": dict(self.boxes), "points": dict(self.points)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_box(box: Any, where: str) -> list[float]:
    if not (isinstance(box, list | tuple) and len(box) == 4 and all(map(_is_number, box))):
        raise PromptError(f"{where}: a box must be [x1, y1, x2, y2] (4 numbers), got {box!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    if not (x2 > x1 and y2 > y1):
        raise PromptError(f"{where}: box {box!r} is empty (needs x2 > x1 and y2 > y1)")
    return [x1, y1, x2, y2]


def _check_point(point: Any, where: str) -> list[float]:
    ok = isinstance(point, list | tuple) and len(point) in (2, 3) and all(map(_is_number, point))
    if not ok:
        raise PromptError(f"{where}: a point must be [x, y] or [x, y, label], got {point!r}")
    label = int(point[2]) if len(point) == 3 else 1
    if label not in POINT_LABELS or (len(point) == 3 and point[2] != label):
        raise PromptError(f"{where}: point label must be 0 or 1, got {point[2]!r}")
    return [float(point[0]), float(point[1]), float(label)]


def _per_image(raw: Any, key: str, source: str) -> Mapping[str, list]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise PromptError(
            f"{source}: {key!r} must map image file names to lists, got {type(raw).__name__}"
        )
    for name, items in raw.items():
        if not isinstance(items, list):
            raise PromptError(f"{source}: {key}[{name!r}] must be a list, got {items!r}")
    return raw


def prompt_set_from_dict(raw: Any, source: str) -> PromptSet:
    """Validate the parsed content of a prompt file (``source`` names it in errors).

    Raises:
        PromptError: unknown keys, wrong types, malformed boxes or points, or no prompt at all.
    """
    if not isinstance(raw, Mapping):
        raise PromptError(f"{source}: expected a mapping with 'text', 'boxes', 'points'")
    unknown = sorted(set(raw) - {"text", "boxes", "points"})
    if unknown:
        raise PromptError(f"{source}: unknown keys {unknown}; allowed: 'text', 'boxes', 'points'")
    text = raw.get("text") or []
    if isinstance(text, str) or not isinstance(text, list):
        raise PromptError(f"{source}: 'text' must be a list of strings, got {text!r}")
    for i, prompt in enumerate(text):
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"{source}: text[{i}] must be a non-empty string, got {prompt!r}")
    if len(set(text)) != len(text):
        raise PromptError(f"{source}: 'text' has duplicates: {text}")
    boxes = {
        name: [_check_box(b, f"{source}: boxes[{name!r}][{i}]") for i, b in enumerate(items)]
        for name, items in _per_image(raw.get("boxes"), "boxes", source).items()
    }
    points: dict[str, list[list[list[float]]]] = {}
    for name, items in _per_image(raw.get("points"), "points", source).items():
        points[name] = []
        for i, clicks in enumerate(items):
            where = f"{source}: points[{name!r}][{i}]"
            if not isinstance(clicks, list) or not clicks:
                raise PromptError(f"{where}: an instance is a non-empty list of points [[x, y]]")
            points[name].append([_check_point(p, where) for p in clicks])
    prompts = PromptSet(text=list(text), boxes=boxes, points=points)
    if prompts.is_empty():
        raise PromptError(f"{source}: holds no prompt (no text, no boxes, no points)")
    return prompts


def load_prompt_file(path: str) -> PromptSet:
    """Read and validate a JSON / YAML prompt file.

    Raises:
        PromptError: the file is missing, cannot be parsed, or is malformed (names the key).
    """
    if not os.path.isfile(path):
        raise PromptError(
            f"prompt file not found: {path!r} (give a JSON/YAML file with 'text', 'boxes', "
            f"'points', or --coco to generate prompts from annotations)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            if path.lower().endswith((".yaml", ".yml")):
                raw = yaml.safe_load(f)
            else:
                raw = json.load(f)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PromptError(f"prompt file {path!r} could not be parsed: {exc}") from exc
    return prompt_set_from_dict(raw, path)


def prompts_from_coco(
    ann_file: str,
    max_per_image: int = DEFAULT_MAX_PER_IMAGE,
    text: bool = True,
    class_prompts: Mapping[str, str] | None = None,
) -> PromptSet:
    """Prompts from a COCO annotation file.

    Text prompts are the category names, or their ``class_prompts`` text where given (e.g.
    ``{"storagetank": "storage tank"}``; ``text=False`` leaves them out). Images are keyed by
    the file name without its folder (COCO ``file_name`` may hold one). Per image, up to
    ``max_per_image`` annotations (largest first, crowd annotations skipped) give one box prompt
    (their box) and one point prompt (the box centre, positive).

    Raises:
        PromptError: missing or malformed file (names the file and the annotation).
    """
    if not os.path.isfile(ann_file):
        raise PromptError(f"COCO annotation file not found: {ann_file!r}")
    try:
        with open(ann_file, encoding="utf-8") as f:
            coco = json.load(f)
        images = {img["id"]: os.path.basename(img["file_name"]) for img in coco["images"]}
        categories = [c["name"] for c in sorted(coco.get("categories", []), key=lambda c: c["id"])]
        annotations = coco.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PromptError(f"COCO annotation file {ann_file!r} is malformed: {exc!r}") from exc
    per_image: dict[str, list[list[float]]] = {}
    for index, ann in enumerate(annotations):
        if ann.get("iscrowd", 0):
            continue
        try:
            name = images[ann["image_id"]]
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PromptError(
                f"{ann_file}: annotations[{index}] has no valid image_id / bbox: {exc!r}"
            ) from exc
        if w > 0 and h > 0:
            per_image.setdefault(name, []).append([x, y, x + w, y + h])
    boxes: dict[str, list[list[float]]] = {}
    points: dict[str, list[list[list[float]]]] = {}
    for name, items in per_image.items():
        items.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        boxes[name] = items[:max_per_image]
        points[name] = [[[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 1.0]] for b in boxes[name]]
    texts = [(class_prompts or {}).get(name, name) for name in categories] if text else []
    prompts = PromptSet(text=list(dict.fromkeys(texts)), boxes=boxes, points=points)
    if prompts.is_empty():
        raise PromptError(f"{ann_file}: no categories and no usable box annotations")
    return prompts


def check_prompts_fit_images(
    prompts: PromptSet, sizes: Mapping[str, tuple[int, int]], source: str
) -> None:
    """Every box / point prompt names an image of ``sizes`` and lies inside it.

    Args:
        prompts: The prompts.
        sizes: Image name -> (width, height) of the images available.
        source: Where the prompts come from (named in errors).

    Raises:
        PromptError: an image that is not available, or a box / point outside its image.
    """
    for name in prompts.image_names():
        if name not in sizes:
            shown = ", ".join(sorted(sizes)[:5])
            raise PromptError(
                f"{source}: prompts name image {name!r}, which is not among the images "
                f"({len(sizes)} found, e.g. {shown})"
            )
        width, height = sizes[name]
        for i, (x1, y1, x2, y2) in enumerate(prompts.boxes.get(name, [])):
            if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                raise PromptError(
                    f"{source}: boxes[{name!r}][{i}] = {[x1, y1, x2, y2]} lies outside the "
                    f"{width}x{height} image"
                )
        for i, clicks in enumerate(prompts.points.get(name, [])):
            for x, y, _ in clicks:
                if not (0 <= x <= width and 0 <= y <= height):
                    raise PromptError(
                        f"{source}: points[{name!r}][{i}] has {[x, y]}, outside the "
                        f"{width}x{height} image"
                    )
