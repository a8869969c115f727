"""DOTA patch splitting on a tiny fixture (size 128, gap 32) in the official layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_fixtures import dota_line, square

from ds2d2_mm.datasets import (
    DOTA_CLASSES,
    AnnotationError,
    DotaObject,
    ImageError,
    crop_objects,
    parse_dota_txt,
    split_dota,
    window_starts,
)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "data"))

import split_dota as split_dota_cli  # noqa: E402

SIZE, GAP = 128, 32
P0001_WINDOWS = [(x, y) for y in (0, 96, 122) for x in (0, 96, 172)]


def _split(src: Path, out: Path, **kwargs: object) -> dict:
    kwargs = {"size": SIZE, "gap": GAP, "progress": False, **kwargs}
    return split_dota(src, out, **kwargs)


def _ann(out: Path, name: str) -> list[str]:
    return (out / "annfiles" / f"{name}.txt").read_text().splitlines()


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(out.rglob("*")) if p.is_file() and ".done" not in p.parts}


def test_window_starts() -> None:
    assert window_starts(300, 128, 32) == [0, 96, 172]
    assert window_starts(250, 128, 32) == [0, 96, 122]
    assert window_starts(128, 128, 32) == [0]
    assert window_starts(100, 128, 32) == [0]
    assert window_starts(1848, 1024, 200) == [0, 824]
    assert window_starts(2000, 1024, 200) == [0, 824, 976]


def test_parse_headers_and_class_case(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("imagesource:GoogleEarth\ngsd:0.1\n\n1 2 3 4 5 6 7 8 Small-Vehicle 1\n")
    assert parse_dota_txt(path) == [
        DotaObject(poly=(1, 2, 3, 4, 5, 6, 7, 8), label=4, difficult=1, line=4)
    ]


@pytest.mark.parametrize(("line", "message"), [
    ("1 2 3 4 5 6 7 8 plane", "expected 10 fields"),
    ("1 2 3 4 5 6 7 8 plane 0 extra", "expected 10 fields"),
    ("1 2 3 4 5 6 7 x plane 0", "non-numeric"),
    ("1 2 3 4 5 6 7 8 container-crane 0", "unknown class 'container-crane'"),
    ("1 2 3 4 5 6 7 8 plane easy", "not an integer"),
])
def test_parse_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "P0009.txt"
    path.write_text("imagesource:GoogleEarth\ngsd:0.1\n1 1 2 1 2 2 1 2 plane 0\n" + line + "\n")
    with pytest.raises(AnnotationError, match=message) as info:
        parse_dota_txt(path)
    assert info.value.line == 4 and f"P0009.txt:4: {info.value.message}" in str(info.value)


def test_crop_objects_threshold_and_truncation() -> None:
    inside = DotaObject(poly=tuple(square(10, 10, 20, 30)), label=0, difficult=0)
    seventy = DotaObject(poly=tuple(square(90, 0, 100, 10)), label=1, difficult=0)  # 0.7 inside
    half = DotaObject(poly=tuple(square(92, 20, 102, 30)), label=2, difficult=0)  # 0.5 inside
    kept = crop_objects([inside, seventy, half], x=0, y=0, size=97, iof_thr=0.7,
                        truncated="rectangle")
    assert [o.label for o in kept] == [0, 1]
    assert kept[0].poly == (10, 10, 20, 10, 20, 30, 10, 30) and not kept[0].truncated
    assert kept[0].difficult == 0 and kept[0].hbox == (10, 10, 20, 30)
    assert kept[1].poly == (90, 0, 97, 0, 97, 10, 90, 10)
    assert kept[1].truncated and kept[1].difficult == 1 and kept[1].hbox == (90, 0, 97, 10)
    shifted = crop_objects([inside], x=5, y=8, size=50)
    assert shifted[0].poly == (5, 2, 15, 2, 15, 22, 5, 22)
    assert crop_objects([half], x=0, y=0, size=97, iof_thr=0.5)[0].truncated


def test_split_patches_and_labels(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = _split(dota_src, out, truncated="rectangle")
    names = sorted(p.stem for p in (out / "images").glob("*.png"))
    expected = sorted([f"P0001__128__{x}___{y}" for x, y in P0001_WINDOWS]
                      + ["P0002__128__0___0"])
    assert names == expected
    assert sorted(p.stem for p in (out / "annfiles").glob("*.txt")) == expected
    # A kept as is, B truncated (28/36 inside) -> clipped + difficult 1 (the 'rectangle'
    # convention), C (13/30) dropped
    assert _ann(out, "P0001__128__0___0") == ["10 10 40 10 40 40 10 40 plane 0",
                                              "100 20 128 20 128 40 100 40 small-vehicle 1"]
    assert _ann(out, "P0001__128__96___0") == ["4 20 40 20 40 40 4 40 small-vehicle 0",
                                               "19 60 49 60 49 70 19 70 ship 0"]
    assert _ann(out, "P0001__128__172___0") == []
    diamond = "104 69 119 84 104 99 89 84 storage-tank 1"
    assert _ann(out, "P0001__128__96___96") == [diamond]
    assert _ann(out, "P0001__128__172___122") == ["28 43 43 58 28 73 13 58 storage-tank 1"]
    assert _ann(out, "P0002__128__0___0") == ["20 20 50 20 50 40 20 40 harbor 0"]
    assert summary["images"] == 2 and summary["objects"] == 5 and summary["patches"] == 10
    assert summary["patch_objects"] == 9 and summary["truncated"] == 1
    assert summary["patches_written"] == 10 and summary["patches_reused"] == 0
    assert summary["skipped"] == []


def test_patch_pixels_and_padding(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    src = cv2.imread(str(dota_src / "images" / "P0001.png"))
    for x, y in P0001_WINDOWS:
        patch = cv2.imread(str(out / "images" / f"P0001__128__{x}___{y}.png"))
        np.testing.assert_array_equal(patch, src[y:y + SIZE, x:x + SIZE])
    small = cv2.imread(str(dota_src / "images" / "P0002.png"))
    patch = cv2.imread(str(out / "images" / "P0002__128__0___0.png"))
    assert patch.shape == (SIZE, SIZE, 3)
    np.testing.assert_array_equal(patch[:80, :100], small)
    assert not patch[80:].any() and not patch[:, 100:].any()


def test_coco_json_of_horizontal_boxes(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out, coco_json=out / "hbb.json", truncated="rectangle")
    coco = json.loads((out / "hbb.json").read_text())
    assert [c["name"] for c in coco["categories"]] == list(DOTA_CLASSES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 16))
    assert len(coco["images"]) == 10 and len(coco["annotations"]) == 9
    first = coco["images"][0]
    assert first == {"id": 1, "file_name": "images/P0001__128__0___0.png", "width": 128,
                     "height": 128}
    anns = [a for a in coco["annotations"] if a["image_id"] == 1]
    assert anns == [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900,
         "iscrowd": 0, "difficult": 0},
        {"id": 2, "image_id": 1, "category_id": 5, "bbox": [100, 20, 28, 20], "area": 560,
         "iscrowd": 0, "difficult": 1},
    ]
    for image in coco["images"]:
        assert (out / image["file_name"]).is_file()


def test_malformed_line_stops_with_file_and_line(dota_src: Path, add_dota_image,
                                                 tmp_path: Path) -> None:
    add_dota_image("P0003", ["imagesource:GoogleEarth", "gsd:0.1",
                             dota_line(square(1, 1, 9, 9), "plane", 0),
                             "1 1 9 1 9 9 1 9 plane"])
    out = tmp_path / "out"
    with pytest.raises(AnnotationError) as info:
        _split(dota_src, out)
    assert info.value.line == 4 and "P0003.txt:4" in str(info.value)
    assert not (out / "images").exists()  # labels are checked before anything is written
    summary = _split(dota_src, out, skip_bad=True)
    assert len(summary["skipped"]) == 1 and "P0003.txt:4" in summary["skipped"][0]
    assert summary["images"] == 2 and not list((out / "images").glob("P0003*"))


@pytest.mark.parametrize("nproc", [1, 2])
def test_unreadable_image_and_missing_label(dota_src: Path, tmp_path: Path,
                                            nproc: int) -> None:
    (dota_src / "images" / "P0004.png").write_bytes(b"\x89PNG broken")
    (dota_src / "labelTxt" / "P0004.txt").write_text("")
    with pytest.raises(ImageError, match="P0004.png"):
        _split(dota_src, tmp_path / "a", nproc=nproc)
    summary = _split(dota_src, tmp_path / "b", nproc=nproc, skip_bad=True)
    assert summary["images"] == 2 and len(summary["skipped"]) == 1
    (dota_src / "labelTxt" / "P0004.txt").unlink()
    with pytest.raises(AnnotationError, match="P0004.txt.*not found"):
        _split(dota_src, tmp_path / "c", nproc=nproc)


def test_resume_keeps_untouched_patches(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    before = _stamps(out)
    again = _split(dota_src, out)
    assert again["images_reused"] == 2 and again["patches_written"] == 0
    assert again["patches_reused"] == 10 and _stamps(out) == before
    # Simulated interruption inside P0001 (one patch and the marker missing) and a lost P0002
    # marker: only the missing patch is written again.
    lost = out / "images" / "P0001__128__96___96.png"
    lost.unlink()
    (out / ".done" / "P0001.json").unlink()
    (out / ".done" / "P0002.json").unlink()
    resumed = _split(dota_src, out)
    assert resumed["images_reused"] == 0 and resumed["patches_written"] == 1
    after = _stamps(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"images/P0001__128__96___96.png"}
    assert (out / ".done" / "P0001.json").is_file() and (out / ".done" / "P0002.json").is_file()
    # a patch deleted behind a valid marker's back is noticed and written again
    (out / "annfiles" / "P0002__128__0___0.txt").unlink()
    assert _split(dota_src, out)["patches_written"] == 1
    assert _ann(out, "P0002__128__0___0") == ["20 20 50 20 50 40 20 40 harbor 0"]


def test_changed_labels_rewrite_label_files_only(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    before = _stamps(out)
    label = dota_src / "labelTxt" / "P0002.txt"
    label.write_text(label.read_text().replace("harbor 0", "harbor 1"))
    summary = _split(dota_src, out)
    after = _stamps(out)
    assert {k for k in after if after[k] != before[k]} == {"annfiles/P0002__128__0___0.txt"}
    assert _ann(out, "P0002__128__0___0") == ["20 20 50 20 50 40 20 40 harbor 1"]
    assert summary["images_reused"] == 1 and summary["patches_written"] == 1


def test_skipped_image_loses_earlier_patches(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    (dota_src / "labelTxt" / "P0002.txt").write_text("1 2 3 4 5 6 7 8 plane\n")
    summary = _split(dota_src, out, skip_bad=True, coco_json=out / "hbb.json")
    assert len(summary["skipped"]) == 1 and summary["images_reused"] == 1
    assert not list(out.rglob("P0002*"))
    coco = json.loads((out / "hbb.json").read_text())
    assert not [im for im in coco["images"] if "P0002" in im["file_name"]]


def test_changed_parameters_redo_and_remove_stale_patches(dota_src: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    summary = _split(dota_src, out, gap=64)  # x starts 0, 64, 128, 172; y starts 0, 64, 122
    names = {p.stem for p in (out / "images").glob("P0001*")}
    assert names == {f"P0001__128__{x}___{y}" for x in (0, 64, 128, 172) for y in (0, 64, 122)}
    assert {p.stem for p in (out / "annfiles").glob("P0001*")} == names
    assert summary["images_reused"] == 0


def test_nproc_2_equals_nproc_1(dota_src: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _split(dota_src, a, nproc=1, coco_json=a / "hbb.json")
    _split(dota_src, b, nproc=2, coco_json=b / "hbb.json")
    files_a, files_b = _files(a), _files(b)
    # patches and label files, 2 markers, the json and the report
    assert files_a.keys() == files_b.keys() and len(files_a) == 2 * 10 + 2 + 1 + 1
    for key in files_a:
        if not key.startswith(".done"):
            assert files_a[key] == files_b[key], key


def test_images_only_without_label_folder(dota_src: Path, tmp_path: Path) -> None:
    for label in (dota_src / "labelTxt").iterdir():
        label.unlink()
    (dota_src / "labelTxt").rmdir()
    out = tmp_path / "out"
    summary = _split(dota_src, out)
    assert summary["patches"] == 10 and not (out / "annfiles").exists()


def test_cli(dota_src: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    args = ["--src", str(dota_src), "--out", str(out), "--size", "128", "--gap", "32",
            "--nproc", "1", "--no-progress"]
    assert split_dota_cli.main([*args, "--coco-json", str(out / "hbb.json")]) == 0
    assert "patches_written: 10" in capsys.readouterr().out
    (dota_src / "labelTxt" / "P0002.txt").write_text("1 2 3 4 5 6 7 8 plane\n")
    assert split_dota_cli.main(args) == 1
    assert "P0002.txt:1" in capsys.readouterr().err
    assert split_dota_cli.main([*args, "--skip-bad"]) == 0


def test_mmrotate_dota_dataset_reads_patches(dota_src: Path, tmp_path: Path) -> None:
    pytest.importorskip("mmrotate")
    from mmrotate.datasets import DOTADataset

    out = tmp_path / "out"
    _split(dota_src, out, truncated="rectangle")
    dataset = DOTADataset(data_root=str(out), ann_file="annfiles/",
                          data_prefix=dict(img_path="images/"), pipeline=[],
                          filter_cfg=dict(filter_empty_gt=False), test_mode=False)
    assert len(dataset) == 10
    infos = {Path(dataset.get_data_info(i)["img_path"]).stem: dataset.get_data_info(i)
             for i in range(len(dataset))}
    info = infos["P0001__128__0___0"]
    assert Path(info["img_path"]).is_file()
    assert [inst["bbox_label"] for inst in info["instances"]] == [0, 4]
    assert info["instances"][1]["bbox"] == [100, 20, 128, 20, 128, 40, 100, 40]
    assert [inst["bbox_label"] for inst in infos["P0002__128__0___0"]["instances"]] == [12]
    assert sum(len(i["instances"]) for i in infos.values()) == 9


def test_rerun_removes_temporaries_of_an_interrupted_run(dota_src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _split(dota_src, out)
    stale = [out / "images" / ".P0001__128__0___0.png.k2j3.tmp",
             out / "annfiles" / ".P0001__128__0___0.txt.x9.tmp",
             out / ".done" / ".P0001.json.ab.tmp", out / ".hbb.json.q1.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    _split(dota_src, out, coco_json=out / "hbb.json")
    assert not [p for p in stale if p.exists()]
    assert not list(out.rglob("*.tmp"))


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL the splitting process: its pool workers must not go on writing."""
    import os
    import signal
    import subprocess
    import time

    psutil = pytest.importorskip("psutil")
    src = tmp_path / "src"
    for i in range(4):  # seconds of work per image: ~15000 patches each
        image = np.random.default_rng(i).integers(0, 256, (4000, 4000, 3), dtype=np.uint8)
        (src / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(src / "images" / f"P{i:04d}.png"), image)
        (src / "labelTxt").mkdir(exist_ok=True)
        (src / "labelTxt" / f"P{i:04d}.txt").write_text(
            dota_line(square(10, 10, 60, 60), "plane", 0) + "\n")
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from ds2d2_mm.datasets import split_dota\n"
            f"split_dota({str(src)!r}, {str(tmp_path / 'out')!r}, size=32, gap=0, nproc=2,"
            " progress=False)\n")
    log = tmp_path / "split.log"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 60
    while len(parent.children()) < 2 and time.time() < deadline:
        time.sleep(0.1)
    workers = parent.children()
    assert len(workers) >= 2, f"the pool did not start: {log.read_text()[-2000:]}"
    images = tmp_path / "out" / "images"
    while len(list(images.glob("*.png"))) < 20 and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the split ended on its own: {log.read_text()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=1.5)

    def running(proc) -> bool:
        """Alive and not a zombie (an orphan's exit is reaped late in some containers)."""
        try:
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    alive = [p for p in alive if running(p)]
    written = len(list(images.glob("*.png")))
    time.sleep(1.0)
    later = len(list(images.glob("*.png")))
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"{len(alive)} workers outlived their killed parent"
    assert later == written, "patches were still written after the parent was killed"
