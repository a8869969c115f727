"""Every file the atomic writer makes gets the mode the umask gives (``0644`` under ``022``), not
the ``0600`` of a temporary file: each payload, and each kind of file the data tools write (COCO
jsons, DOTA patches, label files, markers, reports, Task1 files and their zip)."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ds2d2_mm.utils.io import (
    atomic_open,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_image,
    atomic_write_json,
    atomic_write_text,
    default_file_mode,
    replace_atomically,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets"))

import dataset_fixtures  # noqa: E402

dior_root, dota_src = dataset_fixtures.dior_root, dataset_fixtures.dota_src  # the fixtures

MASKS = {0o022: 0o644, 0o027: 0o640, 0o077: 0o600, 0o002: 0o664}


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Mode of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): mode(p) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mask", sorted(MASKS))
def test_each_payload_gets_the_umask_mode(tmp_path: Path, mask: int) -> None:
    import torch

    with umask(mask):
        assert default_file_mode() == MASKS[mask]
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        atomic_write_text(tmp_path / "b.txt", "x")
        atomic_write_json(tmp_path / "c.json", {"a": 1})
        atomic_write_image(tmp_path / "d.png", np.zeros((4, 4, 3), np.uint8))
        atomic_torch_save({"w": torch.zeros(2)}, tmp_path / "e.pth")
        with atomic_open(tmp_path / "f.txt", "w", fsync=True) as f:
            f.write("x")
        (tmp_path / ".g.tmp").write_bytes(b"x")
        os.chmod(tmp_path / ".g.tmp", 0o600)
        replace_atomically(tmp_path / ".g.tmp", tmp_path / "g.bin")
    assert modes(tmp_path) == dict.fromkeys(
        ["a.bin", "b.txt", "c.json", "d.png", "e.pth", "f.txt", "g.bin"], MASKS[mask])


def test_an_explicit_mode_and_a_replaced_file(tmp_path: Path) -> None:
    (tmp_path / ".a.tmp").write_bytes(b"x")
    replace_atomically(tmp_path / ".a.tmp", tmp_path / "a", mode=0o640)
    assert mode(tmp_path / "a") == 0o640
    target = tmp_path / "b.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    with umask(0o022):
        atomic_write_text(target, "new")
    assert mode(target) == 0o644 and target.read_text() == "new"


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_data_tools_outputs_follow_the_umask(tmp_path: Path, mask: int, dior_root: Path,
                                             dota_src: Path) -> None:
    from ds2d2_mm.datasets import convert_dior, split_dota
    from ds2d2_mm.evaluation import write_task1_submission

    expected = MASKS[mask]
    with umask(mask):
        convert_dior(dior_root, tmp_path / "dior", progress=False)
        split_dota(dota_src, tmp_path / "dota", size=128, gap=32, progress=False,
                   coco_json=tmp_path / "dota" / "hbb.json")
        merged = {"P1": [np.array([[10, 10, 4, 2, 0.0, 0.5]], np.float32),
                         np.zeros((0, 6), np.float32)]}
        write_task1_submission(merged, ("plane", "ship"), tmp_path / "task1")
    dior = modes(tmp_path / "dior")
    assert set(dior) == {"trainval.json", "test.json", "conversion_report.json"}
    dota = modes(tmp_path / "dota")
    kinds = {name.split("/")[0] if "/" in name else name for name in dota}
    assert kinds == {"images", "annfiles", ".done", "hbb.json", "conversion_report.json"}
    task1 = modes(tmp_path / "task1")
    assert set(task1) == {"Task1_plane.txt", "task1.zip"}
    for name, got in {**dior, **dota, **task1}.items():
        assert got == expected, f"{name}: {oct(got)}, umask {oct(mask)} gives {oct(expected)}"


def test_dronevehicle_outputs_follow_the_umask(tmp_path: Path) -> None:
    from test_dronevehicle_to_coco import bndbox, write_pair

    from ds2d2_mm.datasets.converters.dronevehicle import convert_dronevehicle

    root = tmp_path / "DV"
    write_pair(root, "val", "00001", [bndbox("van", 200, 200, 240, 230)])
    with umask(0o022):
        convert_dronevehicle(root, tmp_path / "out", ["val"], crop_border=100, progress=False)
    got = modes(tmp_path / "out")
    assert set(got) == {"annotations/val.json", "annotations/conversion_report.json",
                        "val/rgb/00001.jpg", "val/ir/00001.jpg"}
    assert set(got.values()) == {0o644}
