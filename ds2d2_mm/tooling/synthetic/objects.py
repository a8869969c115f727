"""Appearance of the synthetic objects (4 classes) and of the distractors around them.

Each class has a silhouette (the points a tight horizontal box must enclose) and a painter.
Shapes are described in the object's own frame (see :class:`Pose`): ``a`` along the length axis
(towards the front), ``b`` across it. Shadows fall along the scene's ``sun`` offset direction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .draw import Canvas, Pose, rect_corners

__all__ = [
    "OBJECT_PAINTERS",
    "paint_blob",
    "paint_building",
    "paint_containers",
    "paint_pool",
    "paint_trees",
    "silhouette",
]

Rgb = tuple[float, float, float]
_SHADOW: Rgb = (12.0, 14.0, 18.0)
_CIRCLE_POINTS = 24

_VEHICLE_COLORS: list[Rgb] = [
    (232, 232, 228), (178, 180, 184), (38, 38, 42), (176, 40, 36), (44, 66, 150),
    (92, 92, 98), (200, 182, 140), (210, 210, 215),
]  # fmt: skip
_HULL_COLORS: list[Rgb] = [
    (235, 235, 232), (190, 192, 196), (120, 46, 40), (46, 60, 96), (60, 62, 66),
]  # fmt: skip
_CARGO_COLORS: list[Rgb] = [(176, 62, 40), (40, 96, 150), (60, 130, 70), (200, 160, 60)]
_ROOF_COLORS: list[Rgb] = [
    (150, 70, 55), (120, 120, 124), (175, 170, 160), (90, 100, 120), (110, 84, 70),
]  # fmt: skip
_CONTAINER_COLORS: list[Rgb] = [
    (190, 50, 40), (40, 80, 170), (50, 140, 80), (220, 130, 40), (200, 200, 200),
]  # fmt: skip


def _pick(rng: np.random.Generator, colors: list[Rgb], jitter: float = 8.0) -> np.ndarray:
    base = np.asarray(colors[int(rng.integers(len(colors)))], dtype=np.float32)
    return np.clip(base + rng.normal(0.0, jitter, 3), 0, 255).astype(np.float32)


def _shifted(pose: Pose, offset: np.ndarray) -> Pose:
    return Pose(pose.cx + offset[0], pose.cy + offset[1], pose.length, pose.width, pose.angle)


def _circle(center: np.ndarray, radius: float) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, _CIRCLE_POINTS, endpoint=False)
    return center + radius * np.stack([np.cos(t), np.sin(t)], axis=1)


# --- airplane: cross-shaped silhouette (fuselage, swept wings, tailplane) ---------------------


def _airplane_parts(pose: Pose) -> dict[str, list[np.ndarray]]:
    length, span = pose.length, pose.width
    fw = 0.11 * length  # fuselage width
    sweep = 0.13 * length
    fuselage = [(-0.5 * length, -0.3 * fw), (0.36 * length, -0.5 * fw), (0.5 * length, 0.0),
                (0.36 * length, 0.5 * fw), (-0.5 * length, 0.3 * fw)]
    wings, tails, engines = [], [], []
    for side in (-1.0, 1.0):
        wings.append(pose.points([
            (0.16 * length, side * 0.45 * fw), (0.02 * length - sweep, side * 0.5 * span),
            (-0.06 * length - sweep, side * 0.5 * span), (-0.07 * length, side * 0.45 * fw),
        ]))
        tails.append(pose.points([
            (-0.34 * length, side * 0.3 * fw), (-0.45 * length, side * 0.2 * span),
            (-0.5 * length, side * 0.2 * span), (-0.47 * length, side * 0.3 * fw),
        ]))
        engine_pose = Pose(*pose.points([(0.04 * length - 0.4 * sweep, side * 0.22 * span)])[0],
                           0.12 * length, 0.055 * length, pose.angle)
        engines.append(engine_pose.corners())
    return {"fuselage": [pose.points(fuselage)], "wings": wings, "tails": tails,
            "engines": engines}


def _paint_airplane(canvas: Canvas, pose: Pose, rng: np.random.Generator,
                    sun: np.ndarray) -> None:
    shadow = _airplane_parts(_shifted(pose, sun * 0.14 * pose.length))
    for poly in shadow["wings"] + shadow["tails"] + shadow["fuselage"]:
        canvas.polygon(poly, _SHADOW, 0.38)
    parts = _airplane_parts(pose)
    body = np.float32(rng.uniform(205, 245)) + rng.normal(0, 4, 3).astype(np.float32)
    for poly in parts["wings"] + parts["tails"]:
        canvas.polygon(poly, body * 0.93)
    for poly in parts["engines"]:
        canvas.polygon(poly, body * 0.55)
    canvas.polygon(parts["fuselage"][0], body)
    if rng.random() < 0.5:  # livery stripe along the fuselage
        stripe = rect_corners(pose, 0.7 * pose.length, 0.03 * pose.length, -0.05 * pose.length)
        canvas.polygon(stripe, _pick(rng, _CARGO_COLORS), 0.8)


def _airplane_silhouette(pose: Pose) -> np.ndarray:
    return np.concatenate([p for polys in _airplane_parts(pose).values() for p in polys])


# --- ship: elongated hull with a pointed bow, superstructure at the stern ---------------------


def _hull(pose: Pose) -> np.ndarray:
    length, width = pose.length, pose.width
    return pose.points([(-0.5 * length, -0.5 * width), (0.22 * length, -0.5 * width),
                        (0.5 * length, 0.0), (0.22 * length, 0.5 * width),
                        (-0.5 * length, 0.5 * width)])


def _paint_ship(canvas: Canvas, pose: Pose, rng: np.random.Generator, sun: np.ndarray) -> None:
    length, width = pose.length, pose.width
    if rng.random() < 0.35:  # wake behind a moving ship
        wake = pose.points([(-0.5 * length, -0.35 * width), (-1.1 * length, -1.3 * width),
                            (-1.1 * length, 1.3 * width), (-0.5 * length, 0.35 * width)])
        canvas.polygon(wake, (215, 225, 230), 0.18)
    canvas.polygon(_hull(_shifted(pose, sun * 0.08 * length)), _SHADOW, 0.35)
    hull_color = _pick(rng, _HULL_COLORS)
    canvas.polygon(_hull(pose), hull_color)
    deck = Pose(pose.cx, pose.cy, 0.86 * length, 0.7 * width, pose.angle)
    canvas.polygon(_hull(deck), np.clip(hull_color * 0.85 + 20, 0, 255))
    if length > 22 and rng.random() < 0.6:  # cargo blocks on larger ships
        for k in range(int(rng.integers(2, 5))):
            block = rect_corners(pose, 0.09 * length, 0.55 * width, (-0.05 + 0.11 * k) * length)
            canvas.polygon(block, _pick(rng, _CARGO_COLORS), 0.95)
    bridge = rect_corners(pose, 0.18 * length, 0.62 * width, -0.3 * length)
    canvas.polygon(bridge, (236, 236, 232))
    canvas.polygon(rect_corners(pose, 0.04 * length, 0.62 * width, -0.23 * length), (40, 44, 50))


def _ship_silhouette(pose: Pose) -> np.ndarray:
    return _hull(pose)


# --- storage tank: bright disc with a darker rim and a cast shadow ----------------------------


def _paint_tank(canvas: Canvas, pose: Pose, rng: np.random.Generator, sun: np.ndarray) -> None:
    radius = 0.5 * pose.length
    center = np.array([pose.cx, pose.cy])
    canvas.circle(center + sun * 0.3 * radius, radius, _SHADOW, 0.5)
    canvas.circle(center, radius, (140, 140, 142))  # rim
    shade = np.float32(rng.uniform(215, 248))
    canvas.circle(center, 0.84 * radius, (shade, shade, shade - 4))
    canvas.circle(center + sun * 0.12 * radius, 0.68 * radius, (shade - 30,) * 3, 0.5)
    canvas.circle(center, 0.84 * radius, (110, 110, 112), 0.6, thickness=max(radius * 0.08, 1))
    if rng.random() < 0.5:
        canvas.circle(center, max(0.1 * radius, 0.6), (90, 90, 92), 0.8)


def _tank_silhouette(pose: Pose) -> np.ndarray:
    return _circle(np.array([pose.cx, pose.cy]), 0.5 * pose.length)


# --- vehicle: small rectangle with a dark windshield stripe -----------------------------------


def _paint_vehicle(canvas: Canvas, pose: Pose, rng: np.random.Generator,
                   sun: np.ndarray) -> None:
    length, width = pose.length, pose.width
    canvas.polygon(_shifted(pose, sun * 0.18 * length).corners(), _SHADOW, 0.42)
    body = _pick(rng, _VEHICLE_COLORS)
    canvas.polygon(pose.corners(), body)
    glass = (28, 32, 40) if body.mean() > 100 else (120, 140, 160)
    canvas.polygon(rect_corners(pose, 0.17 * length, 0.86 * width, 0.2 * length), glass)
    canvas.polygon(rect_corners(pose, 0.09 * length, 0.8 * width, -0.3 * length), glass, 0.7)


def _vehicle_silhouette(pose: Pose) -> np.ndarray:
    return pose.corners()


Painter = Callable[[Canvas, Pose, np.random.Generator, np.ndarray], None]

#: Painter per class name of ``SYNTHETIC_CLASSES``.
OBJECT_PAINTERS: dict[str, Painter] = {
    "airplane": _paint_airplane,
    "ship": _paint_ship,
    "storagetank": _paint_tank,
    "vehicle": _paint_vehicle,
}
_SILHOUETTES: dict[str, Callable[[Pose], np.ndarray]] = {
    "airplane": _airplane_silhouette,
    "ship": _ship_silhouette,
    "storagetank": _tank_silhouette,
    "vehicle": _vehicle_silhouette,
}


def silhouette(class_name: str, pose: Pose) -> np.ndarray:
    """Outline points ``(K, 2)`` of an object; its tight horizontal box encloses them."""
    return _SILHOUETTES[class_name](pose)


# --- distractors ------------------------------------------------------------------------------


def paint_building(canvas: Canvas, pose: Pose, rng: np.random.Generator,
                   sun: np.ndarray) -> None:
    """A roof (optionally gabled) with a cast shadow; larger than vehicles, no windshield."""
    height = rng.uniform(0.12, 0.3) * min(pose.length, pose.width)
    canvas.polygon(_shifted(pose, sun * height).corners(), _SHADOW, 0.45)
    roof = _pick(rng, _ROOF_COLORS, 10.0)
    canvas.polygon(pose.corners(), roof)
    if rng.random() < 0.6:  # gable: one half of the roof in shade
        half = rect_corners(Pose(*pose.points([(0, 0.25 * pose.width)])[0], pose.length,
                                 pose.width, pose.angle), pose.length, 0.5 * pose.width)
        canvas.polygon(half, roof * 0.8)


def paint_trees(canvas: Canvas, center: np.ndarray, spread: float, count: int,
                rng: np.random.Generator, sun: np.ndarray) -> None:
    """A clump of dark green crowns with shadows."""
    centers = center + rng.normal(0.0, spread, (count, 2))
    radii = rng.uniform(1.8, 4.5, count)
    for c, r in zip(centers, radii):
        canvas.circle(c + sun * r * 0.8, r, _SHADOW, 0.35)
    for c, r in zip(centers, radii):
        green = np.array([rng.uniform(38, 62), rng.uniform(62, 88), rng.uniform(30, 46)])
        canvas.circle(c, r, green)


def paint_pool(canvas: Canvas, center: np.ndarray, radius: float,
               rng: np.random.Generator) -> None:
    """A round pool or pond: circular like a tank but blue-green and without a bright roof."""
    if rng.random() < 0.5:
        canvas.circle(center, radius * 1.2, (196, 190, 178))  # deck
    water = np.array([rng.uniform(30, 70), rng.uniform(100, 150), rng.uniform(140, 190)])
    canvas.circle(center, radius, water)


def paint_containers(canvas: Canvas, pose: Pose, count: int, rng: np.random.Generator) -> None:
    """A row of parallel shipping containers: coloured elongated boxes without a windshield."""
    pitch = pose.width * 1.12
    for k in range(count):
        offset = (k - (count - 1) / 2) * pitch
        c = pose.points([(0.0, offset)])[0]
        canvas.polygon(Pose(c[0], c[1], pose.length, pose.width, pose.angle).corners(),
                       _pick(rng, _CONTAINER_COLORS, 12.0))


def paint_blob(canvas: Canvas, center: np.ndarray, radius: float, color: np.ndarray,
               alpha: float, rng: np.random.Generator) -> None:
    """An irregular blob (rocks, bushes, stains, cloud shadows)."""
    n = int(rng.integers(7, 12))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * rng.uniform(0.6, 1.2, n)
    canvas.polygon(center + np.stack([r * np.cos(t), r * np.sin(t)], axis=1), color, alpha)
