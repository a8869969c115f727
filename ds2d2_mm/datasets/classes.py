"""Class lists of the supported datasets, their palettes and class-name matching."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DIOR_CLASSES",
    "DIOR_MMROTATE_ORDER",
    "DIOR_PALETTE",
    "DOTA_CLASSES",
    "DOTA_PALETTE",
    "DRONEVEHICLE_CLASSES",
    "DRONEVEHICLE_PALETTE",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_PALETTE",
    "ClassIndex",
    "coco_categories",
]

#: The 20 DIOR classes in the order of the DIOR paper and release (COCO category ids 1..20).
#: MMRotate's ``DIORDataset`` orders three of them differently (:data:`DIOR_MMROTATE_ORDER`:
#: ``expressway-service-area``, ``expressway-toll-station``, ``dam`` at indices 6-8 where this
#: order has ``dam``, ``expressway-service-area``, ``expressway-toll-station``).
DIOR_CLASSES: tuple[str, ...] = (
    "airplane",
    "airport",
    "baseballfield",
    "basketballcourt",
    "bridge",
    "chimney",
    "dam",
    "expressway-service-area",
    "expressway-toll-station",
    "golffield",
    "groundtrackfield",
    "harbor",
    "overpass",
    "ship",
    "stadium",
    "storagetank",
    "tenniscourt",
    "trainstation",
    "vehicle",
    "windmill",
)

#: The DIOR classes in the order of MMRotate's ``DIORDataset`` (its ``METAINFO``): a detector
#: trained with one order and evaluated with the other swaps these three classes.
DIOR_MMROTATE_ORDER: tuple[str, ...] = (
    *DIOR_CLASSES[:6], "expressway-service-area", "expressway-toll-station", "dam",
    *DIOR_CLASSES[9:],
)

#: The 15 DOTA v1.0 classes in the standard order (COCO category ids 1..15).
DOTA_CLASSES: tuple[str, ...] = (
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
)

#: The 4 classes of the built-in synthetic aerial dataset, named as in DIOR.
SYNTHETIC_CLASSES: tuple[str, ...] = ("airplane", "ship", "storagetank", "vehicle")

#: The 5 DroneVehicle classes (VisDrone's RGB-infrared vehicle dataset), in the order of its
#: papers; the XML files spell the last one 'feright car' / 'feright_car' (see
#: ds2d2_mm.datasets.converters.dronevehicle).
DRONEVEHICLE_CLASSES: tuple[str, ...] = ("car", "truck", "bus", "van", "freight_car")

#: One RGB colour per DIOR class (for visualisation).
DIOR_PALETTE: list[tuple[int, int, int]] = [
    (220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228),
    (0, 60, 100), (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30),
    (100, 170, 30), (220, 220, 0), (175, 116, 175), (250, 0, 30), (165, 42, 42),
    (255, 77, 255), (0, 226, 252), (182, 182, 255), (0, 82, 0), (120, 166, 157),
]  # fmt: skip

#: One RGB colour per DOTA v1.0 class (for visualisation).
DOTA_PALETTE: list[tuple[int, int, int]] = DIOR_PALETTE[: len(DOTA_CLASSES)]

#: One RGB colour per synthetic class (for visualisation).
SYNTHETIC_PALETTE: list[tuple[int, int, int]] = [
    (220, 20, 60), (0, 0, 230), (255, 77, 255), (0, 226, 252),
]  # fmt: skip

#: One RGB colour per DroneVehicle class (for visualisation).
DRONEVEHICLE_PALETTE: list[tuple[int, int, int]] = [
    (220, 20, 60), (0, 0, 230), (255, 165, 0), (0, 160, 80), (160, 32, 240),
]  # fmt: skip


def _normalise(name: str) -> str:
    return name.strip().lower()


class ClassIndex:
    """Maps class names to 0-based indices, case-insensitively and ignoring surrounding spaces.

    Args:
        classes: The canonical class names, in category order.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self._index = {_normalise(c): i for i, c in enumerate(self.classes)}
        if len(self._index) != len(self.classes):
            raise ValueError(f"class names are not unique after normalisation: {self.classes}")

    def get(self, name: str) -> int | None:
        """The 0-based index of ``name``, or ``None`` when it is not one of the classes."""
        return self._index.get(_normalise(name))

    def __len__(self) -> int:
        return len(self.classes)


def coco_categories(classes: Sequence[str]) -> list[dict]:
    """COCO ``categories`` entries with ids 1..N in the order of ``classes``."""
    return [{"id": i + 1, "name": name, "supercategory": "none"} for i, name in enumerate(classes)]
