"""Procedural layout of one synthetic aerial scene: background, object clusters, clutter.

A scene is built in painter's order: ground texture, fields, water, roads; then clusters
(parking lots, tank farms, aprons, harbour berths) whose pads are painted at once while their
objects are only placed; scattered objects; distractors kept clear of every object; finally the
objects themselves and a camera finish (gain, haze, blur, noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...datasets.classes import SYNTHETIC_CLASSES
from .draw import (
    Canvas,
    Pose,
    fill_mask,
    fractal_noise,
    rect_corners,
    smooth_noise,
    stripes,
)
from .objects import (
    OBJECT_PAINTERS,
    paint_blob,
    paint_building,
    paint_containers,
    paint_pool,
    paint_trees,
    silhouette,
)

__all__ = ["MAX_BOX_IOU", "SceneObject", "render_scene"]

#: Largest IoU allowed between the horizontal boxes of two objects.
MAX_BOX_IOU = 0.3
#: Largest share of the smaller box covered by another object's box (no hidden objects).
_MAX_BOX_IOA = 0.45
_GROUND_TONES = [(112, 118, 84), (128, 112, 88), (96, 112, 76), (140, 132, 118), (120, 104, 80)]
_FIELD_TONES = [(88, 124, 60), (150, 140, 90), (112, 92, 66), (120, 136, 80), (170, 160, 120)]
_CLUSTERS = ("parking", "tanks", "apron", "harbour")
_CLUSTER_WEIGHTS = (0.36, 0.28, 0.36, 0.24)
_SPOT_TRIES = 30


@dataclass(frozen=True)
class SceneObject:
    """A placed object: class index, oriented frame, tight horizontal box ``(x1, y1, x2, y2)``."""

    label: int
    pose: Pose
    hbox: tuple[float, float, float, float]


def _box_overlaps(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection-over-smaller-area of one box ``(4,)`` against ``(N, 4)`` boxes."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (area + areas - inter), inter / np.minimum(area, areas)


class _Scene:
    """Mutable state while one scene is built."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng, self.size = rng, size
        self.canvas = Canvas(np.zeros((size, size, 3), np.float32))
        self.water = np.zeros((size, size), np.float32)
        self.coast: tuple[np.ndarray, np.ndarray] | None = None  # point on the quay, normal
        self.roads: list[tuple[np.ndarray, float, float]] = []  # point, angle, width
        self.regions: list[np.ndarray] = []  # horizontal boxes of pads
        self.objects: list[tuple[str, Pose, np.ndarray]] = []
        self.boxes = np.zeros((0, 4))
        self.clutter_boxes = np.zeros((0, 4))
        self.scale = rng.uniform(0.75, 1.3)  # ground sample distance variation
        angle = rng.uniform(0, 2 * np.pi)
        self.sun = np.array([np.cos(angle), np.sin(angle)])
        self.grid_angle = rng.choice([0.0, rng.uniform(-np.pi / 2, np.pi / 2)])

    # --- sizes ---------------------------------------------------------------------------------
    def vehicle_length(self) -> float:
        return float(np.clip(self.rng.uniform(8, 11) * self.scale, 6, 16))

    def tank_diameter(self) -> float:
        return float(np.clip(self.rng.uniform(10, 22) * self.scale, 7, 32))

    def ship_length(self) -> float:
        return float(np.clip(self.rng.uniform(14, 32) * self.scale, 10, 40))

    def plane_length(self) -> float:
        return float(np.clip(self.rng.uniform(18, 32) * self.scale, 12, 40))

    # --- queries -------------------------------------------------------------------------------
    def water_at(self, pts: np.ndarray) -> np.ndarray:
        idx = np.clip(np.floor(pts).astype(int), 0, self.size - 1)
        return self.water[idx[:, 1], idx[:, 0]]

    def spot(self, length: float, width: float, angle: float, on: str = "land") -> Pose | None:
        """A free place for a ``length x width`` pad inside the image, on land or on water."""
        for _ in range(_SPOT_TRIES):
            c = self.rng.uniform(0, self.size, 2)
            pose = Pose(c[0], c[1], length, width, angle)
            corners = pose.corners()
            lo, hi = corners.min(axis=0), corners.max(axis=0)
            if lo.min() < 1 or hi.max() > self.size - 1:
                continue
            samples = np.concatenate([corners, [c]])
            wet = self.water_at(samples)
            if (on == "land" and wet.max() > 0.3) or (on == "water" and wet.min() < 0.7):
                continue
            box = np.concatenate([lo, hi])
            if self.regions and _box_overlaps(box, np.array(self.regions))[1].max() > 0.1:
                continue
            return pose
        return None

    # --- objects -------------------------------------------------------------------------------
    def place(self, name: str, pose: Pose) -> bool:
        """Adds an object when it lies inside the image and does not overlap others too much."""
        pts = silhouette(name, pose)
        box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
        if box[:2].min() < 0 or box[2:].max() > self.size:
            return False
        if len(self.boxes):
            iou, ioa = _box_overlaps(box, self.boxes)
            if iou.max() >= MAX_BOX_IOU or ioa.max() >= _MAX_BOX_IOA:
                return False
        self.objects.append((name, pose, box))
        self.boxes = np.vstack([self.boxes, box])
        return True

    def clear_of_objects(self, box: np.ndarray, margin: float = 2.0) -> bool:
        grown = box + np.array([-margin, -margin, margin, margin])
        for boxes in (self.boxes, np.array(self.regions).reshape(-1, 4)):
            if len(boxes) and _box_overlaps(grown, boxes)[0].max() > 0:
                return False
        if len(self.clutter_boxes) and _box_overlaps(grown, self.clutter_boxes)[1].max() > 0.2:
            return False
        return True


# --- background ---------------------------------------------------------------------------------


def _paint_ground(scene: _Scene) -> None:
    rng, s = scene.rng, scene.size
    tone = np.array(_GROUND_TONES[int(rng.integers(len(_GROUND_TONES)))], np.float32)
    tone += rng.normal(0, 8, 3).astype(np.float32)
    light = 1.0 + 0.12 * fractal_noise(rng, s, s)
    tint = cv2.resize(rng.standard_normal((5, 5, 3), dtype=np.float32), (s, s),
                      interpolation=cv2.INTER_CUBIC) * np.float32(6.0)
    grain = rng.standard_normal((s, s, 3), dtype=np.float32) * np.float32(3.0)
    scene.canvas.image[:] = tone * light[..., None] + tint + grain


def _paint_fields(scene: _Scene) -> None:
    rng, s = scene.rng, scene.size
    for _ in range(int(rng.integers(1, 4))):
        c = rng.uniform(0, s, 2)
        pose = Pose(c[0], c[1], rng.uniform(40, 120), rng.uniform(30, 90),
                    scene.grid_angle + rng.normal(0, 0.05))
        tone = np.array(_FIELD_TONES[int(rng.integers(len(_FIELD_TONES)))], np.float32)
        rows = stripes(s, s, pose.angle, rng.uniform(3, 7), rng.uniform(0.03, 0.1))
        texture = tone * rows[..., None] * (1 + 0.05 * smooth_noise(rng, s, s, 6))[..., None]
        scene.canvas.polygon(pose.corners(), texture, rng.uniform(0.55, 0.85))


def _paint_water(scene: _Scene, kind: str) -> None:
    rng, s = scene.rng, scene.size
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)], np.float32)
    center = np.array([s / 2, s / 2], np.float32)
    dist = (xs - center[0]) * normal[0] + (ys - center[1]) * normal[1]
    if kind == "coast":  # straight quay: water on the normal's side
        point = center + normal * rng.uniform(-0.15, 0.2) * s
        dist = dist - float(point @ normal - center @ normal)
        scene.coast = (point.astype(np.float64), normal.astype(np.float64))
    else:  # meandering river band
        dist = np.abs(dist + 6.0 * smooth_noise(rng, s, s, 2)) * -1 + rng.uniform(14, 26)
        dist += 2.0 * smooth_noise(rng, s, s, 8)
    scene.water = np.clip(dist + 0.5, 0.0, 1.0)
    color = np.array([rng.uniform(28, 45), rng.uniform(50, 72), rng.uniform(70, 95)], np.float32)
    waves = stripes(s, s, rng.uniform(0, np.pi), rng.uniform(4, 9), 0.04)
    texture = color * (waves * (1 + 0.06 * smooth_noise(rng, s, s, 5)))[..., None]
    scene.canvas.blend(scene.water, texture)
    if scene.coast is not None:  # concrete quay along the shore
        quay = np.clip(1.0 - np.abs(dist + rng.uniform(2, 3.5)) / 2.0, 0, 1)
        scene.canvas.blend(quay, (168, 166, 160))


def _paint_roads(scene: _Scene, count: int, runway: bool) -> None:
    rng, s = scene.rng, scene.size
    land = 1.0 - scene.water
    for k in range(count + int(runway)):
        is_runway = runway and k == count
        width = rng.uniform(11, 15) if is_runway else rng.uniform(6, 10)
        angle = scene.grid_angle + (np.pi / 2) * int(rng.integers(2)) + rng.normal(0, 0.03)
        point = rng.uniform(0.2 * s, 0.8 * s, 2)
        pose = Pose(point[0], point[1], 3 * s, width, angle)
        grey = rng.uniform(150, 175) if is_runway else rng.uniform(85, 115)
        period = 12.0 if is_runway else 8.0
        dashes = fill_mask(s, s, [
            rect_corners(pose, period / 2, 1.4 if is_runway else 0.8, t)
            for t in np.arange(-1.5 * s, 1.5 * s, period)
        ])
        asphalt = np.array([grey, grey, grey + 3], np.float32)
        paint = np.array([228, 226, 214], np.float32) - asphalt
        texture = asphalt + dashes[..., None] * (np.float32(0.8) * paint)
        scene.canvas.blend(fill_mask(s, s, [pose.corners()]) * land, texture)
        if not is_runway:
            scene.roads.append((point, angle, width))


# --- clusters -----------------------------------------------------------------------------------


def _parking(scene: _Scene) -> None:
    rng = scene.rng
    car = scene.vehicle_length()
    rows, slots = int(rng.integers(1, 4)), int(rng.integers(4, 10))
    slot_pitch, row_pitch = car * 0.5 * rng.uniform(1.45, 1.75), car * rng.uniform(1.3, 2.0)
    angle = scene.grid_angle if rng.random() < 0.6 else rng.uniform(-np.pi, np.pi)
    lot = scene.spot(slots * slot_pitch + 4, rows * row_pitch + 2, angle)
    if lot is None:
        return
    grey = rng.uniform(70, 100)
    scene.canvas.polygon(lot.corners(), (grey, grey, grey + 4), 0.92)
    occupancy = rng.uniform(0.55, 0.95)
    for r in range(rows):
        b = (r - (rows - 1) / 2) * row_pitch
        for k in range(slots + 1):  # painted slot separators
            line = Pose(*lot.points([((k - slots / 2) * slot_pitch, b)])[0], 0.6, car * 1.05,
                        angle)
            scene.canvas.polygon(line.corners(), (220, 220, 214), 0.55)
        for k in range(slots):
            if rng.random() > occupancy:
                continue
            c = lot.points([((k - (slots - 1) / 2) * slot_pitch, b)])[0] + rng.normal(0, 0.3, 2)
            heading = angle + np.pi / 2 + np.pi * int(rng.integers(2)) + rng.normal(0, 0.04)
            length = car * rng.uniform(0.92, 1.08)
            scene.place("vehicle", Pose(c[0], c[1], length, length * rng.uniform(0.45, 0.55),
                                        heading))
    scene.regions.append(np.concatenate([lot.corners().min(0), lot.corners().max(0)]))


def _tank_farm(scene: _Scene) -> None:
    rng = scene.rng
    diameter = scene.tank_diameter()
    rows, cols = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    pitch = diameter * rng.uniform(1.3, 1.7)
    angle = scene.grid_angle + rng.normal(0, 0.02)
    pad = scene.spot(cols * pitch + 0.4 * diameter, rows * pitch + 0.4 * diameter, angle)
    if pad is None:
        return
    concrete = rng.uniform(150, 180)
    wall = Pose(pad.cx, pad.cy, pad.length + 2, pad.width + 2, angle)
    scene.canvas.polygon(wall.corners(), (concrete - 45,) * 3, 0.9)
    scene.canvas.polygon(pad.corners(), (concrete, concrete, concrete - 6), 0.9)
    for r in range(rows):
        for k in range(cols):
            if rng.random() > 0.9:
                continue
            c = pad.points([((k - (cols - 1) / 2) * pitch, (r - (rows - 1) / 2) * pitch)])[0]
            d = diameter * rng.uniform(0.95, 1.05)
            scene.place("storagetank", Pose(c[0], c[1], d, d, 0.0))
    scene.regions.append(np.concatenate([wall.corners().min(0), wall.corners().max(0)]))


def _apron(scene: _Scene) -> None:
    rng = scene.rng
    length = scene.plane_length()
    span = length * rng.uniform(0.85, 1.05)
    count = int(rng.integers(2, 7))
    pitch = span * rng.uniform(1.1, 1.35)
    angle = scene.grid_angle + rng.normal(0, 0.02)
    apron = scene.spot(count * pitch + 4, length * 1.35, angle)
    if apron is None:
        return
    concrete = rng.uniform(170, 195)
    scene.canvas.polygon(apron.corners(), (concrete, concrete, concrete + 3), 0.9)
    facing = angle + np.pi / 2 + (np.pi if rng.random() < 0.5 else 0.0)
    for k in range(count):
        if rng.random() > 0.85:
            continue
        c = apron.points([((k - (count - 1) / 2) * pitch, 0.0)])[0]
        size = length * rng.uniform(0.95, 1.05)
        scene.place("airplane", Pose(c[0], c[1], size, span * size / length,
                                     facing + rng.normal(0, 0.06)))
    scene.regions.append(np.concatenate([apron.corners().min(0), apron.corners().max(0)]))


def _harbour(scene: _Scene) -> None:
    if scene.coast is None:
        return
    rng = scene.rng
    point, normal = scene.coast
    along = np.array([-normal[1], normal[0]])
    base = scene.ship_length()
    perpendicular = rng.random() < 0.6
    pitch = base * (rng.uniform(0.5, 0.75) if perpendicular else rng.uniform(1.1, 1.3))
    pier_len = base * 0.9
    for t in np.arange(-scene.size, scene.size, pitch):
        length = base * rng.uniform(0.8, 1.15)
        width = length * rng.uniform(0.2, 0.3)
        if rng.random() < 0.15:
            continue
        if perpendicular:
            c = point + along * t + normal * (length / 2 + 3.5)
            heading = np.arctan2(normal[1], normal[0]) + (np.pi if rng.random() < 0.3 else 0.0)
            pier = Pose(*(point + along * (t + pitch / 2) + normal * (pier_len / 2 + 2)),
                        pier_len, 2.0, np.arctan2(normal[1], normal[0]))
            if scene.water_at(pier.corners()).min() > 0.5:
                scene.canvas.polygon(pier.corners(), (170, 168, 160))
        else:
            c = point + along * t + normal * (width / 2 + 3.5)
            heading = np.arctan2(along[1], along[0]) + (np.pi if rng.random() < 0.5 else 0.0)
        pose = Pose(c[0], c[1], length, width, heading)
        if scene.water_at(silhouette("ship", pose)).min() > 0.7:
            scene.place("ship", pose)


_CLUSTER_BUILDERS = {"parking": _parking, "tanks": _tank_farm, "apron": _apron,
                     "harbour": _harbour}


# --- scattered objects --------------------------------------------------------------------------


def _scatter(scene: _Scene) -> None:
    rng, s = scene.rng, scene.size
    for point, angle, width in scene.roads:  # traffic in both lanes
        direction = np.array([np.cos(angle), np.sin(angle)])
        side = np.array([-direction[1], direction[0]])
        for _ in range(int(rng.integers(0, 9))):
            lane = rng.choice([-1.0, 1.0])
            c = point + direction * rng.uniform(-s, s) + side * lane * width / 4
            if not (0 < c[0] < s and 0 < c[1] < s) or scene.water_at(c[None])[0] > 0.2:
                continue
            length = scene.vehicle_length()
            heading = angle + (np.pi if lane < 0 else 0.0) + rng.normal(0, 0.03)
            scene.place("vehicle", Pose(c[0], c[1], length, length * 0.5, heading))
    if scene.water.max() > 0:
        for _ in range(int(rng.integers(0, 4))):
            length = scene.ship_length() * rng.uniform(0.6, 1.0)
            pose = scene.spot(length, length * rng.uniform(0.2, 0.3), rng.uniform(0, 2 * np.pi),
                              on="water")
            if pose is not None and scene.water_at(silhouette("ship", pose)).min() > 0.7:
                scene.place("ship", pose)
    extras = [("storagetank", int(rng.integers(0, 3))), ("vehicle", int(rng.integers(0, 4))),
              ("airplane", int(rng.integers(0, 3)))]
    for name, count in extras:
        for _ in range(count):
            if name == "storagetank":
                d = scene.tank_diameter()
                pose = scene.spot(d, d, 0.0)
            elif name == "vehicle":
                length = scene.vehicle_length()
                pose = scene.spot(length, length * 0.5, rng.uniform(0, 2 * np.pi))
            else:
                length = scene.plane_length()
                pose = scene.spot(length, length * 0.95, rng.uniform(0, 2 * np.pi))
            if pose is not None:
                scene.place(name, pose)


# --- clutter ------------------------------------------------------------------------------------


def _clutter(scene: _Scene) -> None:
    """Buildings, trees, pools, container rows and blobs, never on top of an object or pad."""
    rng, s, canvas, sun = scene.rng, scene.size, scene.canvas, scene.sun

    def free(center: np.ndarray, half: float, land: bool = True) -> bool:
        box = np.concatenate([center - half, center + half])
        if land and scene.water_at(np.array([center]))[0] > 0.2:
            return False
        if not scene.clear_of_objects(box):
            return False
        scene.clutter_boxes = np.vstack([scene.clutter_boxes, box])
        return True

    for _ in range(int(rng.integers(3, 13))):
        c = rng.uniform(0, s, 2)
        pose = Pose(c[0], c[1], rng.uniform(12, 36), rng.uniform(9, 26),
                    scene.grid_angle + rng.normal(0, 0.04))
        if free(c, 0.5 * np.hypot(pose.length, pose.width) + 3):
            paint_building(canvas, pose, rng, sun)
    for _ in range(int(rng.integers(2, 9))):
        c, spread = rng.uniform(0, s, 2), rng.uniform(2, 9)
        if free(c, 2 * spread + 5):
            paint_trees(canvas, c, spread, int(rng.integers(3, 13)), rng, sun)
    for _ in range(int(rng.integers(0, 4))):
        c, r = rng.uniform(0, s, 2), rng.uniform(4, 11)
        if free(c, 1.2 * r + 2):
            paint_pool(canvas, c, r, rng)
    for _ in range(int(rng.integers(0, 3))):
        c, count = rng.uniform(0, s, 2), int(rng.integers(3, 9))
        pose = Pose(c[0], c[1], rng.uniform(11, 16), rng.uniform(3.5, 4.5),
                    scene.grid_angle + np.pi / 2 * int(rng.integers(2)))
        if free(c, 0.5 * max(pose.length, count * pose.width * 1.12) + 2):
            paint_containers(canvas, pose, count, rng)
    for _ in range(int(rng.integers(4, 13))):
        c, r = rng.uniform(0, s, 2), rng.uniform(2.5, 9)
        bright = rng.random() < 0.5
        color = np.full(3, rng.uniform(165, 215) if bright else rng.uniform(45, 75), np.float32)
        if free(c, r * 1.2 + 1, land=False):
            paint_blob(canvas, c, r, color + rng.normal(0, 6, 3), rng.uniform(0.5, 0.9), rng)
    if rng.random() < 0.3:  # a soft cloud shadow over everything but the objects drawn later
        mask = np.clip(smooth_noise(rng, s, s, 2) - 0.3, 0, 1)
        canvas.blend(mask, (0, 0, 0), rng.uniform(0.15, 0.3))


def _finish(scene: _Scene) -> np.ndarray:
    rng, img = scene.rng, scene.canvas.image
    img *= np.float32(rng.uniform(0.85, 1.15))
    img += np.float32(rng.uniform(-12, 12))
    haze = np.float32(rng.uniform(0.0, 0.12))
    img += (np.array([180, 186, 196], np.float32) - img) * haze
    img[:] = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(0.4, 0.8)))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2.5)
    return scene.canvas.to_uint8()


def render_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[SceneObject]]:
    """Renders one scene.

    Args:
        rng: The scene's random generator (the only source of randomness).
        size: Image side in pixels.

    Returns:
        The RGB image ``(size, size, 3)`` uint8 and its objects (tight boxes inside the image).
    """
    scene = _Scene(rng, size)
    clusters = list(rng.choice(len(_CLUSTERS), size=int(rng.integers(1, 4)),
                               p=np.array(_CLUSTER_WEIGHTS) / sum(_CLUSTER_WEIGHTS)))
    water = "coast" if 3 in clusters else ("river" if rng.random() < 0.3 else "")
    _paint_ground(scene)
    if rng.random() < 0.6:
        _paint_fields(scene)
    if water:
        _paint_water(scene, water)
    _paint_roads(scene, int(rng.choice([0, 1, 1, 2])), runway=2 in clusters and rng.random() < 0.6)
    for index in sorted(clusters, key=lambda i: -int(i == 3)):  # harbour first: quay berths
        _CLUSTER_BUILDERS[_CLUSTERS[index]](scene)
    _scatter(scene)
    _clutter(scene)
    for name, pose, _box in scene.objects:
        OBJECT_PAINTERS[name](scene.canvas, pose, rng, scene.sun)
    image = _finish(scene)
    objects = [
        SceneObject(label=SYNTHETIC_CLASSES.index(name), pose=pose,
                    hbox=tuple(float(v) for v in np.clip(box, 0, size)))
        for name, pose, box in scene.objects
    ]
    return image, objects
