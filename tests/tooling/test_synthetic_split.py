"""The held-out test split of the built-in synthetic data: its own seed stream, train and val
unchanged to the byte, old dataset folders upgraded without regenerating train and val."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ds2d2_mm.tooling.synthetic import (
    ensure_synthetic_dataset,
    generate_synthetic_dataset,
    synthetic_dataset_is_complete,
    update_synthetic_dataset,
)
from ds2d2_mm.tooling.synthetic import generate as synthetic_module
from ds2d2_mm.utils.io import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "data"))

import make_synthetic  # noqa: E402

PARAMS = dict(num_train=3, num_val=2, img_size=96, seed=7)

#: SHA-256 of every file the generator wrote with ``PARAMS`` before the test split existed
#: (recorded 2026-12 from the first-release generator, train and val only).
FIRST_RELEASE = {
    ".complete.json": "cfbcdde9471f4dc259ae5a275470a239de4af0523b931b211118e73cc81e875c",
    "annotations/train.json": "dd1da6891cc4a64f8a1d15149b4dae9444b7b8d24e02ff8ce94713805ee0ee64",
    "annotations/val.json": "23687c53ab862c42e6a8a29e1e90fdb35b968c6f188a0396c790a88cc5a05b94",
    "images/train/00000.png": "0cc0a658a01c54e646f5d77138fac486bdd51e74af62eb794e94433a8f10d1f7",
    "images/train/00001.png": "b978014f867ed4e7bd5f0225b73374d4f1a0b9f332f377d05a9df37557baeec5",
    "images/train/00002.png": "7fe776f5ef398102b7c4ea948875f85327e7d3cc1b239c578b000c0e9845bf46",
    "images/val/00000.png": "30526fcda343f336559e68b453f5ebb476962da1ea0dc88d47d2bb32a75084c3",
    "images/val/00001.png": "7311aab57b3ced14eab516a4e3d77652921a407cfe1023c6094f40a7cb913750",
    "labelTxt/train/00000.txt": "33a37f45fac0b37850d8e16a44c6f84c855cf4e54ab6e152c118b8972411bd8e",
    "labelTxt/train/00001.txt": "94e9df771ff582b6f5c7d5402e60f2246573282b24f7e3636bd43cb40f27b924",
    "labelTxt/train/00002.txt": "8fbcd72ddb9b4de51292e5770a8149b757e21aa0d1d469e2c81a398e538423d1",
    "labelTxt/val/00000.txt": "5bebbc250b33a8ff419668a6cddf8f4240d20997c84de65dc5affcd607152e44",
    "labelTxt/val/00001.txt": "05ef54623114862f2f0cc5da9a4fc699fe0ffdfaba661326f1808b81a6b1876d",
}
MARKER = ".complete.json"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mtimes(root: Path, splits: tuple[str, ...]) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in sorted(root.rglob("*")) if p.is_file()
            and any(part in splits or part.removesuffix(".json") in splits
                    for part in p.relative_to(root).parts)}


def _is_test_file(rel: str) -> bool:
    return rel == "annotations/test.json" or rel.startswith(("images/test/", "labelTxt/test/"))


def _make_first_release(root: Path) -> None:
    """A dataset folder as the first-release generator left it: train and val, its marker without
    ``num_test`` (checked against the recorded bytes)."""
    generate_synthetic_dataset(root, **PARAMS)
    for rel in list(_files(root)):
        if _is_test_file(rel):
            (root / rel).unlink()
    for folder in ("images/test", "labelTxt/test"):
        (root / folder).rmdir()
    marker = json.loads((root / MARKER).read_text())
    params = {k: v for k, v in marker["params"].items() if k != "num_test"}
    splits = {k: v for k, v in marker["splits"].items() if k != "test"}
    atomic_write_json(root / MARKER, {"params": params, "splits": splits}, indent=1)
    assert {k: _sha(v) for k, v in _files(root).items()} == FIRST_RELEASE


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fresh")
    return root, generate_synthetic_dataset(root, **PARAMS)


def test_train_and_val_are_the_first_release_bytes(fresh: tuple[Path, dict]) -> None:
    root, summary = fresh
    files = _files(root)
    kept = {k: _sha(v) for k, v in files.items() if not _is_test_file(k) and k != MARKER}
    assert kept == {k: v for k, v in FIRST_RELEASE.items() if k != MARKER}
    assert summary["params"]["num_test"] == PARAMS["num_val"]  # default: as many as val


def test_test_split_layout_and_its_own_images(fresh: tuple[Path, dict]) -> None:
    root, summary = fresh
    names = ["00000", "00001"]
    assert sorted(p.stem for p in (root / "images" / "test").glob("*.png")) == names
    assert sorted(p.stem for p in (root / "labelTxt" / "test").glob("*.txt")) == names
    coco = json.loads((root / "annotations" / "test.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == [f"images/test/{n}.png" for n in names]
    assert summary["splits"]["test"]["images"] == 2
    assert summary["splits"]["test"]["objects"] == len(coco["annotations"]) > 0
    # a new seed stream: no test image repeats a val or train image
    files = _files(root)
    test_images = {files[f"images/test/{n}.png"] for n in names}
    others = {v for k, v in files.items() if k.startswith(("images/train/", "images/val/"))}
    assert not test_images & others
    marker = json.loads((root / MARKER).read_text())
    assert list(marker["splits"]) == ["train", "val", "test"]
    assert synthetic_dataset_is_complete(root, **PARAMS)
    assert synthetic_dataset_is_complete(root, **PARAMS, num_test=2)
    assert not synthetic_dataset_is_complete(root, **PARAMS, num_test=3)


def test_test_size_does_not_touch_train_and_val(tmp_path: Path) -> None:
    generate_synthetic_dataset(tmp_path / "none", **PARAMS, num_test=0)
    generate_synthetic_dataset(tmp_path / "five", **PARAMS, num_test=5)
    none, five = _files(tmp_path / "none"), _files(tmp_path / "five")
    same = {k for k in none if not _is_test_file(k) and k != MARKER}
    assert {k: none[k] for k in same} == {k: five[k] for k in same}
    assert len([k for k in five if k.startswith("images/test/")]) == 5
    assert not [k for k in none if k.startswith("images/test/")]
    assert json.loads(none["annotations/test.json"])["images"] == []
    # the first images of a larger test split are those of a smaller one
    generate_synthetic_dataset(tmp_path / "two", **PARAMS)
    two = _files(tmp_path / "two")
    assert two["images/test/00001.png"] == five["images/test/00001.png"]


def test_first_release_folder_gets_only_the_test_split(tmp_path: Path, fresh: tuple[Path, dict],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "old"
    _make_first_release(root)
    assert not synthetic_dataset_is_complete(root, **PARAMS)
    kept = _mtimes(root, ("train", "val"))
    real, calls = synthetic_module.render_scene, []

    def counting(rng: np.random.Generator, size: int):
        calls.append(size)
        return real(rng, size)

    monkeypatch.setattr(synthetic_module, "render_scene", counting)
    assert ensure_synthetic_dataset(root, **PARAMS) == root
    assert len(calls) == 2  # the two test images, nothing else rendered
    assert _mtimes(root, ("train", "val")) == kept
    assert synthetic_dataset_is_complete(root, **PARAMS)
    assert _files(root) == _files(fresh[0])  # the same bytes as a fresh generation, marker too
    calls.clear()
    assert update_synthetic_dataset(root, **PARAMS) is None and not calls


def test_other_test_size_regenerates_only_the_test_split(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    generate_synthetic_dataset(root, **PARAMS, num_test=4)
    kept = _mtimes(root, ("train", "val"))
    real, calls = synthetic_module.render_scene, []

    def flaky(rng: np.random.Generator, size: int):
        calls.append(size)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(rng, size)

    monkeypatch.setattr(synthetic_module, "render_scene", flaky)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_dataset(root, **PARAMS, num_test=3)
    # half-rewritten test split: complete neither with the old size nor with the new one
    assert not synthetic_dataset_is_complete(root, **PARAMS, num_test=4)
    assert not synthetic_dataset_is_complete(root, **PARAMS, num_test=3)
    monkeypatch.setattr(synthetic_module, "render_scene", real)
    summary = update_synthetic_dataset(root, **PARAMS, num_test=1)
    assert summary is not None and summary["splits"]["test"]["images"] == 1
    assert _mtimes(root, ("train", "val")) == kept
    assert sorted(p.name for p in (root / "images" / "test").iterdir()) == ["00000.png"]
    assert sorted(p.name for p in (root / "labelTxt" / "test").iterdir()) == ["00000.txt"]
    reference = tmp_path / "reference"
    generate_synthetic_dataset(reference, **PARAMS, num_test=1)
    assert _files(root) == _files(reference)
    # other train / val parameters regenerate everything
    generate_synthetic_dataset(root, **{**PARAMS, "seed": 8}, num_test=1)
    assert _mtimes(root, ("train", "val")) != kept


def test_invalid_test_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_test"):
        generate_synthetic_dataset(tmp_path, num_test=-1)


def test_cli_num_test(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--out", str(tmp_path), "--num-train", "1", "--num-val", "1", "--img-size", "64"]
    assert make_synthetic.main([*args, "--num-test", "2"]) == 0
    assert "test:" in capsys.readouterr().out
    assert len(list((tmp_path / "images" / "test").glob("*.png"))) == 2
    assert make_synthetic.main([*args, "--num-test", "2"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    stamps = _mtimes(tmp_path, ("train", "val"))
    assert make_synthetic.main(args) == 0  # default: as many test images as val
    assert "class_counts" in capsys.readouterr().out
    assert len(list((tmp_path / "images" / "test").glob("*.png"))) == 1
    assert _mtimes(tmp_path, ("train", "val")) == stamps
