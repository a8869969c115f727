"""DOTA splitter: truncated objects as MMRotate's own splitter writes them (the polygon, DOTA's
first point first, difficult 2; the earlier rectangle convention as an option), checked against
MMRotate's ``img_split.py`` where it ships, and bad objects dropped per object."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import dota_line, square, write_image

from ds2d2_mm.datasets import DOTA_CLASSES, AnnotationError, DotaObject, crop_objects, split_dota
from ds2d2_mm.datasets.converters.common import REPORT_NAME
from ds2d2_mm.utils.errors import DatasetLayoutError

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools" / "data"))

import split_dota as split_dota_cli  # noqa: E402

#: A rotated object whose first corner is not the top-most one, half outside the window
#: [0, 100) x [0, 100), and one wholly inside.
ROTATED = (110.0, 50.0, 80.0, 80.0, 50.0, 50.0, 80.0, 20.0)
INSIDE = (10.0, 10.0, 30.0, 10.0, 30.0, 20.0, 10.0, 20.0)


def test_truncated_objects_keep_the_polygon_and_its_first_point() -> None:
    objects = [DotaObject(poly=ROTATED, label=1, difficult=0),
               DotaObject(poly=INSIDE, label=2, difficult=1)]
    kept = crop_objects(objects, x=0, y=0, size=100, iof_thr=0.5)
    assert [o.label for o in kept] == [1, 2]
    cut, inside = kept
    assert cut.poly == ROTATED  # not re-fitted, not reordered, may stick out of the patch
    assert cut.truncated and cut.difficult == 2 and cut.hbox == (50, 20, 100, 80)
    assert inside.poly == INSIDE and inside.difficult == 1 and not inside.truncated
    shifted = crop_objects(objects, x=5, y=10, size=100, iof_thr=0.5)[0]
    assert shifted.poly == (105, 40, 75, 70, 45, 40, 75, 10)
    # the earlier convention: the minimum-area rectangle of the part inside, difficult 1
    old = crop_objects(objects, x=0, y=0, size=100, iof_thr=0.5, truncated="rectangle")[0]
    assert old.difficult == 1 and old.poly[:2] == (80, 20)  # clockwise from the top-most
    assert old.poly != ROTATED
    with pytest.raises(ValueError, match="truncated must be one of"):
        crop_objects(objects, 0, 0, 100, truncated="clip")


def _mmrotate_img_split():
    mmrotate = pytest.importorskip("mmrotate")
    path = Path(mmrotate.__file__).parent / ".mim/tools/data/dota/split/img_split.py"
    if not path.is_file():
        pytest.skip(f"{path} is not installed")
    spec = importlib.util.spec_from_file_location("mmrotate_img_split", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_windows_match_mmrotate_img_split() -> None:
    """Objects kept per window, their corners and difficult flags equal what MMRotate's
    ``get_window_obj`` + ``translate`` give (its ``crop_and_save_img`` writes those).

    MMRotate marks an object truncated when its area ratio inside the window is below 1, in
    float32: an object wholly inside can come out at 0.999999997 there and get difficult 2.
    Such float noise is not followed: truncated here means a ratio below ``1 - 1e-6``.
    """
    ref = _mmrotate_img_split()
    rng = np.random.default_rng(0)
    objects, polys, names, diffs = [], [], [], []
    for i in range(40):
        cx, cy = rng.uniform(0, 300, 2)
        w, h = rng.uniform(8, 60, 2)
        a = rng.uniform(-np.pi, np.pi)
        du, dv = np.array([-w, w, w, -w]) / 2, np.array([-h, -h, h, h]) / 2
        xs, ys = cx + du * np.cos(a) - dv * np.sin(a), cy + du * np.sin(a) + dv * np.cos(a)
        poly = tuple(round(float(v), 1) for v in np.stack([xs, ys], 1).ravel())
        label, difficult = i % len(DOTA_CLASSES), int(i % 5 == 0)
        objects.append(DotaObject(poly=poly, label=label, difficult=difficult))
        polys.append(poly)
        names.append(DOTA_CLASSES[label])
        diffs.append(difficult)
    info = {"width": 300, "height": 300, "ann": {"bboxes": np.array(polys, np.float32),
                                                 "labels": np.array(names),
                                                 "diffs": np.array(diffs, np.int64)}}
    windows = ref.get_sliding_window(info, [128], [32], 0.6)
    window_anns = ref.get_window_obj(info, windows, 0.7)
    truncated_seen = 0
    for window, ann in zip(windows, window_anns, strict=True):
        x0, y0 = int(window[0]), int(window[1])
        theirs = ref.translate(ann["bboxes"], -x0, -y0)
        iofs = ref.bbox_overlaps_iof(ann["bboxes"], window[None].astype(np.float64))[:, 0]
        assert np.array_equal(ann["trunc"], iofs < 1)  # MMRotate's rule, recomputed
        their_diffs = [2 if r < 1 - 1e-6 else int(d) for r, d in zip(iofs, ann["diffs"])]
        ours = crop_objects(objects, x0, y0, 128, iof_thr=0.7)
        assert [DOTA_CLASSES[o.label] for o in ours] == list(ann["labels"]), (x0, y0)
        assert [o.difficult for o in ours] == their_diffs, (x0, y0)
        np.testing.assert_allclose(np.array([o.poly for o in ours]).reshape(-1, 8),
                                   theirs.reshape(-1, 8), atol=0.01)
        truncated_seen += int(np.sum(iofs < 1 - 1e-6))
    assert truncated_seen >= 10  # the case under test did occur


def test_split_writes_truncated_objects_as_mmrotate(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = split_dota(dota_src, out, size=128, gap=32, progress=False)
    lines = (out / "annfiles" / "P0001__128__0___0.txt").read_text().splitlines()
    assert lines == ["10 10 40 10 40 40 10 40 plane 0",
                     "100 20 136 20 136 40 100 40 small-vehicle 2"]
    assert summary["truncated"] == 1
    args = ["--src", str(dota_src), "--out", str(tmp_path / "old"), "--size", "128", "--gap",
            "32", "--nproc", "1", "--no-progress", "--truncated", "rectangle"]
    assert split_dota_cli.main(args) == 0
    lines = (tmp_path / "old" / "annfiles" / "P0001__128__0___0.txt").read_text().splitlines()
    assert lines[1] == "100 20 128 20 128 40 100 40 small-vehicle 1"


def test_bad_objects_are_dropped_and_listed(dota_src: Path, add_dota_image,
                                            tmp_path: Path) -> None:
    add_dota_image("P0005", ["imagesource:GoogleEarth", "gsd:0.1",
                             dota_line(square(5, 5, 20, 20), "plane", 0),
                             dota_line([30, 30, 30, 30, 40, 30, 40, 30], "ship", 0),  # a line
                             dota_line(square(70, 10, 90, 30), "ship", 0)],  # past x = 64
                   width=64, height=64)
    out = tmp_path / "out"
    summary = split_dota(dota_src, out, size=128, gap=32, progress=False)
    label = dota_src / "labelTxt" / "P0005.txt"
    assert summary["repaired_objects"] == [
        f"{label}:4: object 2: polygon (30, 30, 30, 30, 40, 30, 40, 30) has no area: dropped",
        f"{label}:5: object 3: polygon (70, 10, 90, 10, 90, 30, 70, 30) lies outside the 64x64 "
        "image: dropped"]
    assert summary["objects_dropped"] == 2 and summary["degenerate_dropped"] == 1
    patch = out / "annfiles" / "P0005__128__0___0.txt"
    assert patch.read_text() == "5 5 20 5 20 20 5 20 plane 0\n"
    report = json.loads((out / REPORT_NAME).read_text())
    assert [(e["line"], e["object"], e["action"]) for e in report["objects"]] == [
        (4, 2, "dropped"), (5, 3, "dropped")]
    before = (out / REPORT_NAME).stat().st_mtime_ns
    again = split_dota(dota_src, out, size=128, gap=32, progress=False)
    assert again["repaired_objects"] == summary["repaired_objects"]  # from the markers
    assert (out / REPORT_NAME).stat().st_mtime_ns == before  # unchanged, not rewritten
    with pytest.raises(AnnotationError, match=r"P0005\.txt:4: object 2: polygon .* has no area"):
        split_dota(dota_src, tmp_path / "strict", size=128, gap=32, progress=False, strict=True)
    skipped = split_dota(dota_src, out, size=128, gap=32, progress=False, strict=True,
                         skip_bad=True)
    assert skipped["images"] == 2 and "P0005.txt:4" in skipped["skipped"][0]


def test_no_image_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    out = tmp_path / "out"
    assert split_dota_cli.main(["--src", str(src), "--out", str(out), "--no-progress",
                                "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert f"{src / 'images'}: no image file" in err and "--skip-bad" not in err
    write_image(src / "images" / "P0001.png", 40, 40)
    (src / "labelTxt").mkdir()
    (src / "labelTxt" / "P0001.txt").write_text("1 2 3 plane\n")
    with pytest.raises(DatasetLayoutError, match="every image was skipped"):
        split_dota(src, out, size=32, gap=0, progress=False, skip_bad=True)
    assert not (out / REPORT_NAME).exists()
