"""Writers of tiny DIOR / DOTA fixture datasets in the official formats, and their fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

HBB_DIR = Path("Annotations") / "Horizontal Bounding Boxes"


def voc_xml(objects: list[tuple[str, tuple[int, int, int, int], int | None]],
            size: tuple[int, int] | None, filename: str = "x.jpg") -> str:
    """A VOC/DIOR annotation: ``objects`` as (name, (xmin, ymin, xmax, ymax), difficult)."""
    lines = ["<annotation>", f"  <filename>{filename}</filename>"]
    if size is not None:
        lines += ["  <size>", f"    <width>{size[0]}</width>", f"    <height>{size[1]}</height>",
                  "    <depth>3</depth>", "  </size>"]
    for name, (x1, y1, x2, y2), difficult in objects:
        lines += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>"]
        if difficult is not None:
            lines.append(f"    <difficult>{difficult}</difficult>")
        lines += ["    <bndbox>", f"      <xmin>{x1}</xmin>", f"      <ymin>{y1}</ymin>",
                  f"      <xmax>{x2}</xmax>", f"      <ymax>{y2}</ymax>", "    </bndbox>",
                  "  </object>"]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def write_image(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    """A random BGR image of ``width x height`` written to ``path`` (format by extension)."""
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return image


@pytest.fixture
def dior_root(tmp_path: Path) -> Path:
    """DIOR layout with 3 images: 00001 (train), 00002 (val, size mismatch), 00003 (test).

    00001: "Airplane" (case variant, difficult 1), " vehicle " (spaces, no difficult tag),
    "Expressway-Service-area" (case variant). 00002: xml says 50x50, the file is 40x30, one box
    sticking out of the real image (clipped). 00003: one "SHIP".
    """
    root = tmp_path / "DIOR"
    write_image(root / "JPEGImages-trainval" / "00001.jpg", 64, 48, seed=1)
    write_image(root / "JPEGImages-trainval" / "00002.jpg", 40, 30, seed=2)
    write_image(root / "JPEGImages-test" / "00003.jpg", 32, 32, seed=3)
    ann = root / HBB_DIR
    ann.mkdir(parents=True)
    (ann / "00001.xml").write_text(voc_xml([
        ("Airplane", (5, 6, 20, 30), 1),
        (" vehicle ", (30, 10, 34, 18), None),
        ("Expressway-Service-area", (0, 0, 64, 48), 0),
    ], (64, 48)))
    (ann / "00002.xml").write_text(voc_xml([("storagetank", (10, 10, 45, 28), 0)], (50, 50)))
    (ann / "00003.xml").write_text(voc_xml([("SHIP", (1, 2, 11, 22), 0)], (32, 32)))
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("00001\n")
    (main / "val.txt").write_text("00002\n")
    (main / "test.txt").write_text("00003\n")
    return root


def square(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """The 4 corners (clockwise in image coordinates) of an axis-aligned rectangle."""
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def dota_line(poly: list[float], name: str, difficult: int) -> str:
    return " ".join([*(f"{v:g}" for v in poly), name, str(difficult)])


#: Objects of P0001 (300 x 250). With size 128 / gap 32 the windows start at x in {0, 96, 172}
#: and y in {0, 96, 122}.
P0001_OBJECTS = [
    (square(10, 10, 40, 40), "plane", 0),  # A: only inside window (0, 0)
    (square(100, 20, 136, 40), "small-vehicle", 0),  # B: 28/36 inside (0, 0), all inside x=96
    (square(115, 60, 145, 70), "ship", 0),  # C: 13/30 inside (0, 0) -> dropped there
    ([200, 165, 215, 180, 200, 195, 185, 180], "storage-tank", 1),  # D: a diamond, difficult
]


@pytest.fixture
def dota_src(tmp_path: Path) -> Path:
    """DOTA layout: P0001 (300x250, 4 objects, header lines) and P0002 (100x80, padded)."""
    src = tmp_path / "DOTA" / "train"
    write_image(src / "images" / "P0001.png", 300, 250, seed=4)
    write_image(src / "images" / "P0002.png", 100, 80, seed=5)
    labels = src / "labelTxt"
    labels.mkdir(parents=True)
    lines = ["imagesource:GoogleEarth", "gsd:0.146343590398"]
    lines += [dota_line(*obj) for obj in P0001_OBJECTS]
    (labels / "P0001.txt").write_text("\n".join(lines) + "\n")
    (labels / "P0002.txt").write_text("imagesource:GoogleEarth\ngsd:null\n"
                                      + dota_line(square(20, 20, 50, 40), "harbor", 0) + "\n")
    return src


@pytest.fixture
def add_dota_image(dota_src: Path) -> Callable[[str, list[str], int, int], None]:
    """Adds an image with raw label lines to the ``dota_src`` fixture."""

    def add(name: str, lines: list[str], width: int = 64, height: int = 64) -> None:
        write_image(dota_src / "images" / f"{name}.png", width, height, seed=6)
        (dota_src / "labelTxt" / f"{name}.txt").write_text("\n".join(lines) + "\n")

    return add
