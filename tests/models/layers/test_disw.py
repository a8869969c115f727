"""Tests of ds2d2_mm.models.layers.disw: vectorised DISW maps against the per-box loops of the
definitions."""

from __future__ import annotations

import math

import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from ds2d2_mm.models.layers.disw import (
    boxes_to_disw_input,
    disw_pyramid,
    disw_weights,
    disw_weights_reference,
    disw_weights_rotated,
    disw_weights_rotated_reference,
)

IMG = (800, 800)
FPN = [(100, 100), (50, 50), (25, 25), (13, 13), (7, 7)]
GRIDS = [*FPN, (33, 57)]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
MAX_BOX_SIDE = 300.0


def random_boxes(k: int, seed: int, img=IMG, outside: float = 0.1) -> torch.Tensor:
    """(k, 4) boxes of 1 to 300 px, corners spread ``outside`` beyond the image on each side."""
    gen = torch.Generator().manual_seed(seed)
    size = torch.tensor([img[1], img[0]], dtype=torch.float32)
    xy = (torch.rand(k, 2, generator=gen) * (1 + 2 * outside) - outside) * size
    wh = torch.exp(torch.rand(k, 2, generator=gen) * math.log(MAX_BOX_SIDE))
    return torch.cat([xy, xy + wh], 1)


def random_rboxes(k: int, seed: int, img=IMG) -> torch.Tensor:
    """(k, 5) oriented boxes, some tiny, some partly outside the image, angles in [-pi/2, pi/2)."""
    gen = torch.Generator().manual_seed(seed)
    size = torch.tensor([img[1], img[0]], dtype=torch.float32)
    centre = (torch.rand(k, 2, generator=gen) * 1.1 - 0.05) * size
    wh = torch.exp(torch.rand(k, 2, generator=gen) * math.log(200.0)) * 0.5
    angle = (torch.rand(k, 1, generator=gen) - 0.5) * math.pi
    return torch.cat([centre, wh, angle], 1)


def test_hand_computed_example():
    # 8x8 input, 4x4 grid: cell = 2 px.
    boxes = torch.tensor(
        [
            [0.0, 0.0, 2.0, 2.0],  # cols 0..1, rows 0..1: 4 cells
            [2.0, 0.0, 7.9, 1.0],  # cols 1..ceil(3.95)->3, rows 0..1: 6 cells
            [-4.0, 6.0, 1.0, 20.0],  # cols 0..1, rows 3..clamp(10)=3: 2 cells
            [9.0, 9.0, 12.0, 12.0],  # starts at col 4 > 3: nothing
        ]
    )
    expected = torch.tensor(
        [
            [1 + 1 / 4, 1 + 1 / 4 + 1 / 6, 1 + 1 / 6, 1 + 1 / 6],
            [1 + 1 / 4, 1 + 1 / 4 + 1 / 6, 1 + 1 / 6, 1 + 1 / 6],
            [1.0, 1.0, 1.0, 1.0],
            [1.5, 1.5, 1.0, 1.0],
        ]
    )
    for fn in (disw_weights, disw_weights_reference):
        out = fn([boxes], (8, 8), (4, 4))
        assert out.shape == (1, 1, 4, 4)
        torch.testing.assert_close(out[0, 0], expected, atol=1e-7, rtol=0)


def test_non_square_scaling_by_hand():
    # 20 x 10 input (H, W) on a 4 x 5 grid: x scale 1/2, y scale 1/5.
    box = torch.tensor([[3.0, 5.0, 3.0, 5.0]])  # x 1.5 -> cols 1..2, y 1.0 -> row 1..1
    out = disw_weights([box], (20, 10), (4, 5))[0, 0]
    expected = torch.ones(4, 5)
    expected[1, 1:3] += 0.5
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def _scenarios() -> dict[str, list[torch.Tensor]]:
    zero = torch.tensor([[100.0, 100.0, 100.0, 100.0], [3.0, 797.0, 3.0, 797.0]])
    outside = torch.tensor(
        [[-50.0, -50.0, -20.0, -10.0], [810.0, 0.0, 900.0, 50.0], [0.0, 805.0, 800.0, 900.0]]
    )
    return {
        "random": [random_boxes(40, 0), random_boxes(25, 1)],
        "partly_outside": [random_boxes(60, 2, outside=0.5)],
        "zero_size": [zero],
        "fully_outside": [outside],
        "no_boxes": [torch.zeros(0, 4), torch.zeros(0, 4)],
        "empty_beside_full": [torch.zeros(0, 4), random_boxes(30, 3), torch.zeros((0,))],
        "many_boxes": [random_boxes(3000, 4), random_boxes(5, 5)],
    }


@pytest.mark.parametrize("name", list(_scenarios()))
@pytest.mark.parametrize("grid", GRIDS)
def test_matches_reference(name, grid):
    boxes = _scenarios()[name]
    out = disw_weights(boxes, IMG, grid)
    ref = disw_weights_reference(boxes, IMG, grid)
    assert out.shape == (len(boxes), 1, *grid)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_scenarios_are_not_trivial():
    scen = _scenarios()
    grid = (50, 50)
    assert disw_weights(scen["random"], IMG, grid).max() > 1.2
    assert torch.equal(disw_weights(scen["fully_outside"], IMG, grid), torch.ones(1, 1, 50, 50))
    assert torch.equal(disw_weights(scen["no_boxes"], IMG, grid), torch.ones(2, 1, 50, 50))
    mixed = disw_weights(scen["empty_beside_full"], IMG, grid)
    assert torch.equal(mixed[0], torch.ones(1, 50, 50)) and mixed[1].max() > 1
    # (100, 100) lands on a cell corner: one cell of weight 1. (3, 797) maps to x 0.03, y 7.97:
    # cols 0..1 and row 7 (8 clamped to 7), so two cells of 1/2.
    zero = disw_weights(scen["zero_size"], IMG, (8, 8))[0, 0]
    assert zero[1, 1] == 2.0 and zero[7, 0] == 1.5 and zero[7, 1] == 1.5
    assert zero.sum() == 64 + 2


def test_total_mass_is_one_per_box_inside():
    boxes = [random_boxes(200, 6, outside=0.0).clamp(0, 799)]
    out = disw_weights(boxes, IMG, (50, 50))
    torch.testing.assert_close((out - 1).sum().double(), torch.tensor(200.0, dtype=torch.float64))


def test_pyramid_equals_per_level_calls():
    boxes = [random_boxes(500, 7), torch.zeros(0, 4), random_boxes(3, 8)]
    maps = disw_pyramid(boxes, IMG, GRIDS)
    assert len(maps) == len(GRIDS)
    for level, grid in zip(maps, GRIDS, strict=True):
        assert torch.equal(level, disw_weights(boxes, IMG, grid))
    assert disw_pyramid(boxes, IMG, []) == []


def test_dtype_half_boxes_and_errors():
    boxes = [random_boxes(50, 9).half()]
    out = disw_weights(boxes, IMG, (25, 25))
    assert out.dtype == torch.float32 and out.device == boxes[0].device
    torch.testing.assert_close(out, disw_weights_reference(boxes, IMG, (25, 25)))
    with pytest.raises(ValueError, match="disw_weights_rotated"):
        disw_weights([torch.zeros(2, 5)], IMG, (4, 4))
    with pytest.raises(ValueError, match="non-empty list"):
        disw_weights([], IMG, (4, 4))
    with pytest.raises(ValueError, match="feat_shape"):
        disw_weights([torch.zeros(1, 4)], IMG, (0, 4))


@CUDA
def test_cuda_matches_cpu_without_host_sync():
    boxes = [random_boxes(2000, 10), torch.zeros(0, 4), random_boxes(7, 11).half()]
    cpu = disw_pyramid(boxes, IMG, FPN)
    cuda_boxes = [b.cuda() for b in boxes]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        maps = disw_pyramid(cuda_boxes, IMG, FPN)
        single = disw_weights(cuda_boxes, IMG, (25, 25))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for out, ref in zip(maps, cpu, strict=True):
        assert out.is_cuda and out.dtype == torch.float32
        torch.testing.assert_close(out.cpu(), ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(single.cpu(), cpu[2], atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Oriented boxes
# ---------------------------------------------------------------------------------------------


def test_rotated_axis_aligned_box_covers_expected_cells():
    # 8x8 input, 4x4 grid: cell centres at 1, 3, 5, 7 px.
    box = torch.tensor([[4.0, 2.0, 6.5, 2.5, 0.0]])  # x in [0.75, 7.25], y in [0.75, 3.25]
    out = disw_weights_rotated([box], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[0:2, :] += 1 / 8
    torch.testing.assert_close(out, expected, atol=1e-7, rtol=0)

    # Turned upright: x in [2.75, 5.25], y in [-1.25, 5.25].
    turned = torch.tensor([[4.0, 2.0, 6.5, 2.5, math.pi / 2]])
    out = disw_weights_rotated([turned], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[0:3, 1:3] += 1 / 6
    torch.testing.assert_close(out, expected, atol=1e-7, rtol=0)


def test_rotated_diagonal_box_by_hand():
    # A thin box along the main diagonal of an 8x8 input covers only the diagonal cell centres.
    box = torch.tensor([[4.0, 4.0, 11.0, 0.5, math.pi / 4]])
    out = disw_weights_rotated([box], (8, 8), (4, 4))[0, 0]
    torch.testing.assert_close(out, torch.eye(4) / 4 + 1, atol=1e-7, rtol=0)


def test_rotated_tiny_box_falls_back_to_its_centre_cell():
    boxes = torch.tensor(
        [
            [4.2, 4.2, 0.1, 0.1, 0.3],  # covers no centre -> cell (2, 2)
            [-1.0, 3.0, 0.1, 0.1, 0.0],  # centre off the grid -> nothing
            [7.9, 0.1, 0.2, 0.2, 1.0],  # -> cell (0, 3)
        ]
    )
    out = disw_weights_rotated([boxes], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[2, 2] += 1
    expected[0, 3] += 1
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


@pytest.mark.parametrize("func", [disw_weights_rotated, disw_weights_rotated_reference])
def test_rotated_zero_width_and_zero_size_boxes(func):
    # 8x8 input, 4x4 grid: cell centres at 1, 3, 5, 7 px.
    on_line = torch.tensor([[3.0, 4.0, 0.0, 8.0, 0.0]])  # segment x = 3: column 1, rows 0..3
    out = func([on_line], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[:, 1] += 0.25
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    between = torch.tensor([[4.0, 4.0, 0.0, 8.0, 0.0]])  # x = 4 holds no centre: centre cell
    out = func([between], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[2, 2] += 1
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    point = torch.tensor([[5.0, 3.0, 0.0, 0.0, 0.7]])  # a point on the centre of cell (1, 2)
    out = func([point], (8, 8), (4, 4))[0, 0]
    expected = torch.ones(4, 4)
    expected[1, 2] += 1
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    assert torch.isfinite(func([torch.zeros(3, 5)], (8, 8), (4, 4))).all()


@pytest.mark.parametrize("turns", [-3, -1, 1, 2, 7])
@pytest.mark.parametrize("func", [disw_weights_rotated, disw_weights_rotated_reference])
def test_rotated_angles_outside_le90_are_normalised(turns, func):
    from ds2d2_mm.models.layers.disw import normalise_angle

    boxes = random_rboxes(120, 21)
    turned = boxes.double().clone()
    turned[:, 4] += turns * math.pi  # the same rectangles, angles outside [-pi/2, pi/2)
    assert not ((turned[:, 4] >= -math.pi / 2) & (turned[:, 4] < math.pi / 2)).all()
    torch.testing.assert_close(func([turned], IMG, (40, 40)), func([boxes], IMG, (40, 40)),
                               atol=0, rtol=0)
    angles = torch.tensor([-math.pi / 2, 0.3, math.pi / 2, 3 * math.pi / 2 + 0.1, -7.0, 1e4],
                          dtype=torch.float64)
    norm = normalise_angle(angles)
    assert ((norm >= -math.pi / 2) & (norm < math.pi / 2)).all()
    assert norm[0] == angles[0] and norm[1] == angles[1]  # in range: unchanged, bit for bit
    torch.testing.assert_close(torch.sin(2 * norm), torch.sin(2 * angles))  # same rectangle
    torch.testing.assert_close(torch.cos(2 * norm), torch.cos(2 * angles))


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("max_candidates", [97, 1 << 20])
def test_rotated_matches_reference(grid, max_candidates):
    boxes = [random_rboxes(150, 12), torch.zeros(0, 5), random_rboxes(20, 13).half()]
    out = disw_weights_rotated(boxes, IMG, grid, max_candidates=max_candidates)
    ref = disw_weights_rotated_reference(boxes, IMG, grid)
    assert out.shape == (3, 1, *grid) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    assert out[0].max() > 1.5 and torch.equal(out[1], torch.ones(1, *grid))


def test_rotated_pyramid_equals_per_level_calls():
    boxes = [random_rboxes(80, 14), random_rboxes(5, 15)]
    maps = disw_pyramid(boxes, IMG, FPN)
    for level, grid in zip(maps, FPN, strict=True):
        assert torch.equal(level, disw_weights_rotated(boxes, IMG, grid))


@CUDA
def test_rotated_cuda_matches_cpu():
    boxes = [random_rboxes(300, 16), torch.zeros(0, 5)]
    ref = disw_weights_rotated(boxes, IMG, (50, 50))
    out = disw_weights_rotated([b.cuda() for b in boxes], IMG, (50, 50))
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), ref, atol=1e-6, rtol=1e-6)


def test_boxes_to_disw_input():
    hbox = HorizontalBoxes(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    tensor, rotated = boxes_to_disw_input(hbox)
    assert tensor.shape == (1, 4) and not rotated
    tensor, rotated = boxes_to_disw_input(torch.zeros(3, 5))
    assert tensor.shape == (3, 5) and rotated
    with pytest.raises(ValueError, match=r"\(k, 4\)"):
        boxes_to_disw_input(torch.zeros(3, 6))
    with pytest.raises(TypeError):
        boxes_to_disw_input([[1.0, 2.0, 3.0, 4.0]])


def test_boxes_to_disw_input_rotated_boxes():
    rotated_boxes = pytest.importorskip("mmrotate.structures.bbox").RotatedBoxes
    tensor, rotated = boxes_to_disw_input(rotated_boxes(torch.zeros(2, 5)))
    assert tensor.shape == (2, 5) and rotated
