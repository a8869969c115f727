"""DISW: density-independent scale weights on feature grids, for horizontal and oriented boxes.

The weight of a grid cell is ``1 + sum over the boxes covering it of 1 / (cells the box
covers)``: every box spreads a total weight of one over its footprint, so that small and crowded
objects weigh as much as large ones instead of being drowned by them.

Horizontal boxes (``x1, y1, x2, y2`` in input pixels) on an ``h x w`` grid of an ``H x W`` input
cover the columns ``floor(x1 * w / W) .. ceil(x2 * w / W)`` and the rows
``floor(y1 * h / H) .. ceil(y2 * h / H)``, both ends inclusive, with the first index clamped to
``>= 0`` and the last to ``<= size - 1``; a box left with no cell (first > last) adds nothing.
Coordinates are scaled in float64 as ``(x * w) / W``.

The vectorised versions scatter each box's four corner values into one flat 2D difference
buffer for all images and levels (``index_add_``, deterministic on CUDA) and integrate it with two
cumulative sums; they run on the boxes' device in float64 and never synchronise with the host.
``disw_weights_reference`` and ``disw_weights_rotated_reference`` are the per-box loops of the
definitions, kept as test oracles and benchmark baselines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from mmdet.structures.bbox import BaseBoxes
from torch import Tensor

__all__ = [
    "boxes_to_disw_input",
    "disw_pyramid",
    "disw_weights",
    "disw_weights_reference",
    "disw_weights_rotated",
    "disw_weights_rotated_reference",
    "normalise_angle",
]

#: Columns of a horizontal box: x1, y1, x2, y2.
HBOX_DIM = 4
#: Columns of an oriented box: cx, cy, w, h, angle (radians, mmrotate 'le90').
RBOX_DIM = 5
#: Default bound on the (box, candidate cell) pairs held at once by the rotated version; with about
#: ten float64 / int64 temporaries per pair this keeps its working memory near 100 MB.
DEFAULT_MAX_CANDIDATES = 1 << 20
#: Offset of a cell centre from its index, in cells.
_CELL_CENTRE = 0.5
#: Extra cells added on each side of an oriented box's candidate window, so that rounding in the
#: window bounds can never exclude a cell that the exact inside test accepts.
_WINDOW_MARGIN = 1

_ACC_DTYPE = torch.float64
_OUT_DTYPE = torch.float32


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _hw(shape: Sequence[int], name: str) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"{name} must be (height, width), got {shape!r}")
    height, width = (int(v) for v in tuple(shape)[-2:])
    if height <= 0 or width <= 0:
        raise ValueError(f"{name} must be positive (height, width), got {tuple(shape)!r}")
    return height, width


def _concat_boxes(
    boxes: Sequence[Tensor], box_dim: int, func: str
) -> tuple[Tensor, Tensor, torch.device]:
    """Stacks the per-image boxes of a batch.

    Args:
        boxes: N tensors (k_i, box_dim), any float dtype, all on one device.
        box_dim: 4 (horizontal) or 5 (oriented).
        func: caller name, for error messages.

    Returns:
        Boxes (K, box_dim) float64, their image index (K,) int64, and the device.
    """
    if isinstance(boxes, Tensor) or len(boxes) == 0:
        raise ValueError(
            f"{func}: boxes must be a non-empty list with one (k_i, {box_dim}) tensor per image"
        )
    device = boxes[0].device
    flat, batch = [], []
    for i, b in enumerate(boxes):
        if b.numel() == 0:
            b = b.reshape(0, box_dim)
        if b.dim() != 2 or b.shape[1] != box_dim:
            hint = ""
            if box_dim == HBOX_DIM and b.dim() == 2 and b.shape[1] == RBOX_DIM:
                hint = "; oriented (k, 5) boxes go to disw_weights_rotated"
            raise ValueError(
                f"{func}: boxes[{i}] must have shape (k, {box_dim}), got {tuple(b.shape)}{hint}"
            )
        flat.append(b.to(device=device, dtype=_ACC_DTYPE))
        batch.append(torch.full((b.shape[0],), i, dtype=torch.long, device=device))
    return torch.cat(flat), torch.cat(batch), device


def _level_table(
    num_images: int, feat_shapes: Sequence[tuple[int, int]], device: torch.device, pad: int
) -> tuple[Tensor, list[int], list[int]]:
    """Per-level grid constants on ``device``, without a blocking host-device copy.

    Args:
        num_images: N.
        feat_shapes: L (h, w) grids.
        device: target device.
        pad: extra rows / columns of each level's buffer (1 for a difference array).

    Returns:
        A (L, 3) int64 table of (h, w, offset of the level in the flat buffer), the offsets and
        sizes of the levels as Python ints.
    """
    rows, offsets, sizes = [], [], []
    offset = 0
    for h, w in feat_shapes:
        size = num_images * (h + pad) * (w + pad)
        rows.append((h, w, offset))
        offsets.append(offset)
        sizes.append(size)
        offset += size
    table = torch.tensor(rows, dtype=torch.long).to(device, non_blocking=True)
    return table, offsets, sizes


def _scaled(coord: Tensor, grid_size: Tensor | int, img_size: int) -> Tensor:
    """Input pixels -> grid units, ``(coord * grid_size) / img_size`` in float64."""
    return coord * grid_size / img_size


def _cell_centre(index: Tensor, img_size: int, grid_size: Tensor | int) -> Tensor:
    """Pixel coordinate of cell centres: ``((index + 0.5) * img_size) / grid_size``."""
    return (index + _CELL_CENTRE) * img_size / grid_size


def normalise_angle(angle: Tensor) -> Tensor:
    """Angles outside mmrotate's ``'le90'`` range ``[-pi/2, pi/2)`` brought into it (a rectangle
    turned by pi is the same rectangle); angles already in the range are returned unchanged,
    bit for bit."""
    half = math.pi / 2
    outside = (angle < -half) | (angle >= half)
    return torch.where(outside, torch.remainder(angle + half, math.pi) - half, angle)


def _box_local(dx: Tensor, dy: Tensor, cos: Tensor, sin: Tensor) -> tuple[Tensor, Tensor]:
    """Offsets from a box centre (image axes) -> the box's own axes (along w, along h)."""
    return dx * cos + dy * sin, dy * cos - dx * sin


def _inside_rotated(u: Tensor, v: Tensor, width: Tensor, height: Tensor) -> Tensor:
    """Whether box-axis offsets (u, v) lie in the box, boundary included."""
    return (u.abs() <= width / 2) & (v.abs() <= height / 2)


# --------------------------------------------------------------------------------------------
# Horizontal boxes
# --------------------------------------------------------------------------------------------


def _horizontal_maps(
    boxes: Sequence[Tensor],
    img_shape: tuple[int, int],
    feat_shapes: Sequence[tuple[int, int]],
    func: str,
) -> list[Tensor]:
    img_h, img_w = _hw(img_shape, "img_shape")
    shapes = [_hw(s, "feat_shape") for s in feat_shapes]
    coords, batch, device = _concat_boxes(boxes, HBOX_DIM, func)
    num_images = len(boxes)
    table, offsets, sizes = _level_table(num_images, shapes, device, pad=1)
    # Per-level constants as (L, 1) columns against the (1, K) boxes.
    grid_h, grid_w, level_offset = (t.unsqueeze(1) for t in table.unbind(1))
    grid_hf, grid_wf = grid_h.to(_ACC_DTYPE), grid_w.to(_ACC_DTYPE)
    x1, y1, x2, y2 = (c.unsqueeze(0) for c in coords.unbind(1))

    # First / last covered column and row, clamped; the extra clamps (first <= size,
    # last >= -1) keep out-of-grid boxes invalid while bounding the indices.
    col0 = torch.minimum(torch.floor(_scaled(x1, grid_wf, img_w)).clamp_(min=0), grid_wf)
    col1 = torch.maximum(torch.ceil(_scaled(x2, grid_wf, img_w)), grid_wf.new_full((), -1.0))
    col1 = torch.minimum(col1, grid_wf - 1)
    row0 = torch.minimum(torch.floor(_scaled(y1, grid_hf, img_h)).clamp_(min=0), grid_hf)
    row1 = torch.maximum(torch.ceil(_scaled(y2, grid_hf, img_h)), grid_hf.new_full((), -1.0))
    row1 = torch.minimum(row1, grid_hf - 1)
    valid = (col0 <= col1) & (row0 <= row1)
    num_cells = ((col1 - col0 + 1) * (row1 - row0 + 1)).clamp_(min=1)
    value = torch.where(valid, num_cells.reciprocal(), torch.zeros_like(num_cells))  # (L, K)

    # Corners of each box in its level's (N, h + 1, w + 1) difference array.
    row_stride = grid_w + 1
    base = level_offset + batch.unsqueeze(0) * (grid_h + 1) * row_stride
    c0, c1, r0, r1 = col0.long(), col1.long() + 1, row0.long(), row1.long() + 1
    index = torch.stack(
        (
            base + r0 * row_stride + c0,
            base + r0 * row_stride + c1,
            base + r1 * row_stride + c0,
            base + r1 * row_stride + c1,
        )
    )
    signed = torch.stack((value, -value, -value, value))
    diff = torch.zeros(sum(sizes), dtype=_ACC_DTYPE, device=device)
    diff.index_add_(0, index.reshape(-1), signed.reshape(-1))

    maps = []
    for (h, w), offset, size in zip(shapes, offsets, sizes, strict=True):
        level = diff[offset : offset + size].view(num_images, h + 1, w + 1)
        level = level.cumsum(1).cumsum(2)[:, :h, :w]
        maps.append((level + 1).to(_OUT_DTYPE).unsqueeze(1))
    return maps


def disw_weights(
    boxes: Sequence[Tensor], img_shape: tuple[int, int], feat_shape: tuple[int, int]
) -> Tensor:
    """DISW map of horizontal boxes on one grid (vectorised, no host-device sync).

    Args:
        boxes: N tensors (k_i, 4) of x1, y1, x2, y2 in input pixels (any float dtype; k_i may be
            0), all on one device.
        img_shape: (H, W) of the batch input.
        feat_shape: (h, w) of the grid.

    Returns:
        (N, 1, h, w) float32 on the boxes' device: ``1 + sum over boxes of 1 / cells`` on the
        cells each box covers (the rule of the module docstring).
    """
    return _horizontal_maps(boxes, img_shape, [feat_shape], "disw_weights")[0]


def disw_pyramid(
    boxes: Sequence[Tensor],
    img_shape: tuple[int, int],
    feat_shapes: Sequence[tuple[int, int]],
) -> list[Tensor]:
    """DISW maps on several grids (FPN levels) at once; equal to one call per level.

    All levels share one difference buffer and one scatter. Oriented boxes (k_i, 5) are
    accepted too and go to the oriented rule (:func:`disw_weights_rotated`, all levels at once).

    Args:
        boxes: N tensors (k_i, 4) horizontal or (k_i, 5) oriented boxes, in input pixels.
        img_shape: (H, W) of the batch input.
        feat_shapes: L grids (h_l, w_l).

    Returns:
        L maps (N, 1, h_l, w_l), float32, on the boxes' device.
    """
    if len(feat_shapes) == 0:
        return []
    if _is_rotated_batch(boxes):
        return _rotated_maps(boxes, img_shape, feat_shapes, DEFAULT_MAX_CANDIDATES, "disw_pyramid")
    return _horizontal_maps(boxes, img_shape, feat_shapes, "disw_pyramid")


def _is_rotated_batch(boxes: Sequence[Tensor]) -> bool:
    return (
        not isinstance(boxes, Tensor)
        and len(boxes) > 0
        and all(b.dim() == 2 and b.shape[1] == RBOX_DIM for b in boxes)
    )


def _reference_start(boxes: Sequence[Tensor], img_shape: tuple[int, int],
                     feat_shape: tuple[int, int],
                     name: str) -> tuple[tuple[int, int], tuple[int, int], Tensor]:
    """Checked sizes and the all-ones (N, 1, H_l, W_l) accumulator of a per-box reference loop."""
    img_hw, grid_hw = _hw(img_shape, "img_shape"), _hw(feat_shape, "feat_shape")
    if isinstance(boxes, Tensor) or len(boxes) == 0:
        raise ValueError(f"{name}: boxes must be a non-empty list of tensors")
    weights = torch.ones((len(boxes), 1, *grid_hw), dtype=_ACC_DTYPE, device=boxes[0].device)
    return img_hw, grid_hw, weights


def disw_weights_reference(
    boxes: Sequence[Tensor], img_shape: tuple[int, int], feat_shape: tuple[int, int]
) -> Tensor:
    """Per-box loop of the horizontal DISW definition: the oracle for :func:`disw_weights`.

    Same arguments and result as :func:`disw_weights`; slow (one host sync per image, one
    tensor update per box).
    """
    (img_h, img_w), (grid_h, grid_w), weights = _reference_start(
        boxes, img_shape, feat_shape, "disw_weights_reference")
    for i, image_boxes in enumerate(boxes):
        for x1, y1, x2, y2 in image_boxes.reshape(-1, HBOX_DIM).double().tolist():
            col0 = max(math.floor(x1 * grid_w / img_w), 0)
            col1 = min(math.ceil(x2 * grid_w / img_w), grid_w - 1)
            row0 = max(math.floor(y1 * grid_h / img_h), 0)
            row1 = min(math.ceil(y2 * grid_h / img_h), grid_h - 1)
            if col0 > col1 or row0 > row1:
                continue
            num_cells = (col1 - col0 + 1) * (row1 - row0 + 1)
            weights[i, 0, row0 : row1 + 1, col0 : col1 + 1] += 1.0 / num_cells
    return weights.to(_OUT_DTYPE)


# --------------------------------------------------------------------------------------------
# Oriented boxes
# --------------------------------------------------------------------------------------------


def _chunk_bounds(counts: list[int], max_candidates: int) -> list[tuple[int, int, int]]:
    """Splits entries into consecutive chunks of at most ``max_candidates`` candidates.

    Returns (start, stop, candidates) per chunk; an entry larger than the bound is a chunk of
    its own. Entries with no candidate are skipped at the chunk edges.
    """
    chunks, start, total = [], 0, 0
    for i, n in enumerate(counts):
        if total and total + n > max_candidates:
            chunks.append((start, i, total))
            start, total = i, 0
        if not total and not n:
            start = i + 1
            continue
        total += n
    if total:
        chunks.append((start, len(counts), total))
    return chunks


def _rotated_maps(
    boxes: Sequence[Tensor],
    img_shape: tuple[int, int],
    feat_shapes: Sequence[tuple[int, int]],
    max_candidates: int,
    func: str,
) -> list[Tensor]:
    img_h, img_w = _hw(img_shape, "img_shape")
    shapes = [_hw(s, "feat_shape") for s in feat_shapes]
    if max_candidates < 1:
        raise ValueError(f"{func}: max_candidates must be >= 1, got {max_candidates}")
    coords, batch, device = _concat_boxes(boxes, RBOX_DIM, func)
    num_images, num_boxes, num_levels = len(boxes), coords.shape[0], len(shapes)
    table, offsets, sizes = _level_table(num_images, shapes, device, pad=0)
    acc = torch.zeros(sum(sizes), dtype=_ACC_DTYPE, device=device)

    # One entry per (level, box), flattened level-major: (L * K,).
    def per_entry(t: Tensor) -> Tensor:
        return t.expand(num_levels, num_boxes).reshape(-1)

    grid_h, grid_w, level_offset = (per_entry(t.unsqueeze(1)) for t in table.unbind(1))
    grid_hf, grid_wf = grid_h.to(_ACC_DTYPE), grid_w.to(_ACC_DTYPE)
    cx, cy, bw, bh, angle = (per_entry(c.unsqueeze(0)) for c in coords.unbind(1))
    angle = normalise_angle(angle)
    image = per_entry(batch.unsqueeze(0))
    base = level_offset + image * grid_h * grid_w
    cos, sin = torch.cos(angle), torch.sin(angle)

    # Candidate window: cells whose centres may fall in the box's axis-aligned bounding
    # rectangle, widened by a margin and clamped to the grid.
    half_x = (bw / 2 * cos).abs() + (bh / 2 * sin).abs()
    half_y = (bw / 2 * sin).abs() + (bh / 2 * cos).abs()
    col0 = torch.floor(_scaled(cx - half_x, grid_wf, img_w) - _CELL_CENTRE) - _WINDOW_MARGIN
    col1 = torch.ceil(_scaled(cx + half_x, grid_wf, img_w) - _CELL_CENTRE) + _WINDOW_MARGIN
    row0 = torch.floor(_scaled(cy - half_y, grid_hf, img_h) - _CELL_CENTRE) - _WINDOW_MARGIN
    row1 = torch.ceil(_scaled(cy + half_y, grid_hf, img_h) - _CELL_CENTRE) + _WINDOW_MARGIN
    col0 = torch.minimum(col0.clamp(min=0), grid_wf).nan_to_num_(0).long()
    col1 = torch.maximum(torch.minimum(col1, grid_wf - 1), -torch.ones_like(col1))
    col1 = col1.nan_to_num_(-1).long()
    row0 = torch.minimum(row0.clamp(min=0), grid_hf).nan_to_num_(0).long()
    row1 = torch.maximum(torch.minimum(row1, grid_hf - 1), -torch.ones_like(row1))
    row1 = row1.nan_to_num_(-1).long()
    win_w = (col1 - col0 + 1).clamp_(min=0)
    win_h = (row1 - row0 + 1).clamp_(min=0)
    num_candidates = win_w * win_h
    # The single host sync of the call: candidate counts, to size the chunks.
    chunks = _chunk_bounds(num_candidates.tolist(), max_candidates)

    inside_count = torch.zeros_like(cx)
    for start, stop, total in chunks:
        counts = num_candidates[start:stop]
        entry = torch.repeat_interleave(
            torch.arange(start, stop, device=device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts
        local = torch.arange(total, device=device) - first[entry - start]
        width = win_w[entry]
        cols = col0[entry] + local % width
        rows = row0[entry] + local // width
        dx = _cell_centre(cols.to(_ACC_DTYPE), img_w, grid_wf[entry]) - cx[entry]
        dy = _cell_centre(rows.to(_ACC_DTYPE), img_h, grid_hf[entry]) - cy[entry]
        u, v = _box_local(dx, dy, cos[entry], sin[entry])
        inside = _inside_rotated(u, v, bw[entry], bh[entry]).to(_ACC_DTYPE)
        inside_count.index_add_(0, entry, inside)
        share = inside / inside_count[entry].clamp(min=1)
        acc.index_add_(0, base[entry] + rows * grid_w[entry] + cols, share)

    # Boxes that cover no cell centre take the cell holding their centre, if it is on the grid.
    centre_col = torch.floor(_scaled(cx, grid_wf, img_w))
    centre_row = torch.floor(_scaled(cy, grid_hf, img_h))
    on_grid = (centre_col >= 0) & (centre_col < grid_wf) & (centre_row >= 0)
    on_grid &= centre_row < grid_hf
    fallback = (inside_count == 0) & on_grid
    centre_col = torch.where(fallback, centre_col, torch.zeros_like(centre_col)).long()
    centre_row = torch.where(fallback, centre_row, torch.zeros_like(centre_row)).long()
    acc.index_add_(0, base + centre_row * grid_w + centre_col, fallback.to(_ACC_DTYPE))

    return [
        (acc[offset : offset + size].view(num_images, 1, h, w) + 1).to(_OUT_DTYPE)
        for (h, w), offset, size in zip(shapes, offsets, sizes, strict=True)
    ]


def disw_weights_rotated(
    boxes: Sequence[Tensor],
    img_shape: tuple[int, int],
    feat_shape: tuple[int, int],
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> Tensor:
    """DISW map of oriented boxes on one grid (vectorised over boxes, bounded memory).

    Rule: cell (i, j) of an ``h x w`` grid on an ``H x W`` input has its centre at
    ``(((j + 0.5) * W) / w, ((i + 0.5) * H) / h)`` pixels. A box (cx, cy, bw, bh, a) covers the
    cells whose centre p satisfies ``|u| <= bw / 2`` and ``|v| <= bh / 2`` (boundary
    included), where ``u = dx cos a + dy sin a``, ``v = dy cos a - dx sin a`` and
    ``(dx, dy) = p - (cx, cy)``: ``a`` turns the box's width axis from the image x axis towards
    the image y axis (clockwise on screen), as in mmrotate's ``'le90'`` ``RotatedBoxes``; angles
    outside ``[-pi/2, pi/2)`` are first brought into it (:func:`normalise_angle`). A box of zero
    width or height covers the cell centres on its segment (boundary included). A box
    that covers no cell centre covers instead the single cell ``(floor(cy * h / H),
    floor(cx * w / W))`` holding its centre, if that cell is on the grid. Every covered cell gets
    ``1 / (cells covered)``; the map is 1 plus the sum over boxes.

    Each box is tested only against the cells of its bounding rectangle, in chunks of at most
    ``max_candidates`` (box, cell) pairs; one host sync per call sizes the chunks.

    Args:
        boxes: N tensors (k_i, 5) of cx, cy, w, h, angle (radians), pixels, any float dtype.
        img_shape: (H, W) of the batch input.
        feat_shape: (h, w) of the grid.
        max_candidates: memory bound, in (box, cell) pairs per chunk.

    Returns:
        (N, 1, h, w) float32 on the boxes' device.
    """
    return _rotated_maps(boxes, img_shape, [feat_shape], max_candidates, "disw_weights_rotated")[0]


def disw_weights_rotated_reference(
    boxes: Sequence[Tensor], img_shape: tuple[int, int], feat_shape: tuple[int, int]
) -> Tensor:
    """Per-box loop of the oriented DISW rule (:func:`disw_weights_rotated`): its test oracle.

    Each box is tested against every cell centre of the grid.
    """
    (img_h, img_w), (grid_h, grid_w), weights = _reference_start(
        boxes, img_shape, feat_shape, "disw_weights_rotated_reference")
    device = weights.device
    centre_x = _cell_centre(torch.arange(grid_w, dtype=_ACC_DTYPE, device=device), img_w, grid_w)
    centre_y = _cell_centre(torch.arange(grid_h, dtype=_ACC_DTYPE, device=device), img_h, grid_h)
    for i, image_boxes in enumerate(boxes):
        for box in image_boxes.reshape(-1, RBOX_DIM).to(_ACC_DTYPE):
            cx, cy, bw, bh, angle = box.unbind()
            angle = normalise_angle(angle)
            dx = centre_x.unsqueeze(0) - cx
            dy = centre_y.unsqueeze(1) - cy
            u, v = _box_local(dx, dy, torch.cos(angle), torch.sin(angle))
            inside = _inside_rotated(u, v, bw, bh)
            num_cells = int(inside.sum())
            if num_cells:
                weights[i, 0] += inside.to(_ACC_DTYPE) / num_cells
                continue
            col = math.floor(float(cx) * grid_w / img_w)
            row = math.floor(float(cy) * grid_h / img_h)
            if 0 <= col < grid_w and 0 <= row < grid_h:
                weights[i, 0, row, col] += 1.0
    return weights.to(_OUT_DTYPE)


def boxes_to_disw_input(bboxes: Tensor | BaseBoxes) -> tuple[Tensor, bool]:
    """Box tensor for the DISW functions, and whether the boxes are oriented.

    Args:
        bboxes: a (k, 4) / (k, 5) tensor, or an mmdet ``BaseBoxes`` (``HorizontalBoxes`` gives
            (k, 4) x1y1x2y2, mmrotate ``RotatedBoxes`` gives (k, 5) cx, cy, w, h, angle).

    Returns:
        The (k, 4) or (k, 5) tensor (a view, not a copy) and ``is_rotated``.
    """
    if isinstance(bboxes, BaseBoxes):
        tensor = bboxes.tensor
    elif isinstance(bboxes, Tensor):
        tensor = bboxes
    else:
        raise TypeError(
            f"boxes_to_disw_input expects a Tensor or an mmdet BaseBoxes, got {type(bboxes)!r}"
        )
    if tensor.dim() != 2 or tensor.shape[1] not in (HBOX_DIM, RBOX_DIM):
        raise ValueError(
            "boxes_to_disw_input: expected (k, 4) horizontal or (k, 5) oriented boxes, got "
            f"shape {tuple(tensor.shape)} from {type(bboxes).__name__}"
        )
    return tensor, tensor.shape[1] == RBOX_DIM
