"""The converters' shared driver: the pool hands a bad file's error back, COCO files are written
all or none, and the per-object rule (clip, drop, list, strict)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ds2d2_mm.datasets.converters.common import (
    CocoBuilder,
    ObjectLog,
    clip_box,
    describe,
    run_tasks,
    write_coco_files,
)
from ds2d2_mm.utils.errors import AnnotationError, DatasetError


def square_or_fail(x: int) -> int:
    if x == 3:
        raise AnnotationError(f"f{x}.txt", "bad", line=2)
    return x * x


@pytest.mark.parametrize("nproc", [1, 2])
def test_run_tasks_hands_errors_back_with_the_task_index(nproc: int) -> None:
    out = sorted(run_tasks(square_or_fail, [1, 2, 3, 4], nproc=nproc, progress=False,
                           ordered=nproc == 1))
    assert [(i, r) for i, r, _ in out] == [(0, 1), (1, 4), (2, None), (3, 16)]
    error = out[2][2]
    assert isinstance(error, AnnotationError) and str(error) == "f3.txt:2: bad"


def test_coco_files_are_written_all_or_none(tmp_path: Path) -> None:
    full, empty = CocoBuilder(["a", "b"]), CocoBuilder(["a", "b"])
    image_id = full.add_image("x.jpg", 10, 8)
    full.add_object(image_id, 1, [1, 2, 3, 4], 12, difficult=0)
    with pytest.raises(DatasetError, match=r"b\.json: no image to write.*no file was written"):
        write_coco_files({tmp_path / "a.json": full, tmp_path / "b.json": empty})
    assert not list(tmp_path.iterdir())
    write_coco_files({tmp_path / "a.json": full})
    assert json.loads((tmp_path / "a.json").read_text()) == {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 8}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4],
                         "area": 12, "iscrowd": 0, "difficult": 0}],
        "categories": [{"id": 1, "name": "a", "supercategory": "none"},
                       {"id": 2, "name": "b", "supercategory": "none"}]}


@pytest.mark.parametrize(("box", "expected"), [
    ((1, 2, 5, 6), ((1, 2, 5, 6), None)),
    ((0, 0, 800, 600), ((0, 0, 800, 600), None)),
    ((700, 10, 802, 50), ((700, 10, 800, 50), "crosses the edge of the 800x600 image")),
    ((-3, -1, 10, 10), ((0, 0, 10, 10), "crosses the edge")),
    ((162, 10, 162, 40), (None, "has zero width (xmin = xmax)")),
    ((5, 9, 8, 9), (None, "has zero height (ymin = ymax)")),
    ((5, 5, 5, 5), (None, "has zero size")),
    ((9, 5, 4, 8), (None, "xmax < xmin or ymax < ymin")),
    ((810, 5, 900, 8), (None, "lies outside the 800x600 image")),
    ((800, 5, 900, 8), (None, "lies outside the 800x600 image")),  # touches the edge only
])
def test_clip_box(box, expected) -> None:
    got, problem = clip_box(box, 800, 600)
    assert got == expected[0]
    assert (problem is None) == (expected[1] is None)
    if problem is not None:
        assert expected[1] in problem and problem.startswith("box (")


def test_object_log_lists_or_raises() -> None:
    log = ObjectLog()
    log.clipped("a.xml", 8, 1, "box (1, 2, 802, 4) crosses the edge", (1, 2, 800, 4))
    log.dropped("a.xml", 19, 2, "box (3, 3, 3, 9) has zero width")
    assert [describe(e) for e in log.entries] == [
        "a.xml:8: object 1: box (1, 2, 802, 4) crosses the edge: clipped to (1, 2, 800, 4)",
        "a.xml:19: object 2: box (3, 3, 3, 9) has zero width: dropped"]
    assert log.count("clipped") == 1 and log.count("dropped") == 1
    strict = ObjectLog(strict=True)
    strict.clipped("a.xml", 8, 1, "crosses", (0, 0, 1, 1))  # repairs do not stop a strict run
    with pytest.raises(AnnotationError) as info:
        strict.dropped("a.xml", 19, 2, "box (3, 3, 3, 9) has zero width")
    assert info.value.line == 19 and "object 2: box (3, 3, 3, 9) has zero width" in str(info.value)
