"""Property tests (hypothesis): DISW maps and the explicit stream over random boxes, grid shapes
and dtypes are finite, non-negative and equal to the brute-force definitions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ds2d2_mm.models.layers.disw import disw_weights
from ds2d2_mm.models.losses import DISWLoss

PROFILE = settings(max_examples=40, deadline=None, derandomize=True)

sides = st.integers(min_value=1, max_value=23)
coord = st.floats(min_value=-40.0, max_value=240.0, allow_nan=False, width=32)


@st.composite
def box_batches(draw):
    """(img_hw, grid_hw, per-image boxes): up to 3 images, up to 6 boxes each, any placement."""
    img = (draw(st.integers(16, 200)), draw(st.integers(16, 200)))
    grid = (draw(sides), draw(sides))
    images = []
    for _ in range(draw(st.integers(1, 3))):
        boxes = []
        for _ in range(draw(st.integers(0, 6))):
            x1, y1 = draw(coord), draw(coord)
            w = draw(st.floats(0.0, 150.0, allow_nan=False, width=32))
            h = draw(st.floats(0.0, 150.0, allow_nan=False, width=32))
            boxes.append([x1, y1, x1 + w, y1 + h])
        images.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    return img, grid, images


def brute_force(boxes, img, grid):
    """The definition, cell by cell: 1 + sum over covering boxes of 1 / (cells of the box)."""
    (height, width), (gh, gw) = img, grid
    out = torch.ones(gh, gw, dtype=torch.float64)
    for x1, y1, x2, y2 in boxes.double().tolist():
        c1, r1 = max(math.floor(x1 * gw / width), 0), max(math.floor(y1 * gh / height), 0)
        c2 = min(math.ceil(x2 * gw / width), gw - 1)
        r2 = min(math.ceil(y2 * gh / height), gh - 1)
        if c1 > c2 or r1 > r2:
            continue
        cells = (c2 - c1 + 1) * (r2 - r1 + 1)
        for r in range(gh):
            for c in range(gw):
                if r1 <= r <= r2 and c1 <= c <= c2:
                    out[r, c] += 1 / cells
    return out


@PROFILE
@given(box_batches(), st.sampled_from([torch.float32, torch.float64, torch.float16]))
def test_disw_equals_the_definition_for_any_boxes(batch, dtype):
    img, grid, images = batch
    if dtype == torch.float16:  # boxes stored in half precision: compare on what was stored
        images = [b.half() for b in images]
    maps = disw_weights([b.to(dtype) for b in images], img, grid)
    assert maps.shape == (len(images), 1, *grid) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and (maps >= 1).all()
    for n, boxes in enumerate(images):
        expected = brute_force(boxes.float(), img, grid).float()
        torch.testing.assert_close(maps[n, 0], expected, rtol=1e-5, atol=1e-6)
    # density independence: every box that covers a cell adds exactly one over the map
    covering = sum(1 for boxes in images for b in brute_force_boxes(boxes, img, grid) if b)
    assert float((maps - 1).sum()) == pytest.approx(covering, rel=1e-4, abs=1e-4)


def brute_force_boxes(boxes, img, grid):
    """Whether each box covers at least one cell."""
    (height, width), (gh, gw) = img, grid
    for x1, y1, x2, y2 in boxes.double().tolist():
        c1, r1 = max(math.floor(x1 * gw / width), 0), max(math.floor(y1 * gh / height), 0)
        c2 = min(math.ceil(x2 * gw / width), gw - 1)
        r2 = min(math.ceil(y2 * gh / height), gh - 1)
        yield c1 <= c2 and r1 <= r2


@PROFILE
@given(box_batches(), st.integers(1, 4), st.sampled_from([torch.float32, torch.float64]),
       st.integers(0, 2**16))
def test_explicit_loss_is_finite_non_negative_and_the_weighted_band_mse(batch, channels, dtype,
                                                                       seed):
    img, grid, images = batch
    gen = torch.Generator().manual_seed(seed)
    n = len(images)
    feat_hw = (2 * grid[0] - (seed % 2), 2 * grid[1])  # odd heights too
    student = torch.randn(n, channels, *feat_hw, generator=gen, dtype=dtype)
    teacher = torch.randn(n, channels, *feat_hw, generator=gen, dtype=dtype)
    loss = DISWLoss(student_channels=channels, teacher_channels=channels, num_levels=1,
                    lambda_low=0.7, lambda_high=1.3)
    out = loss([student], [teacher], images, img)
    for key in ("loss_exp_low", "loss_exp_high"):
        assert torch.isfinite(out[key]) and out[key] >= 0, key
    # brute force: Haar bands of 2x2 blocks (zero padding), DISW on the band grid
    h, w = (feat_hw[0] + 1) // 2, (feat_hw[1] + 1) // 2
    pad = torch.zeros(n, channels, 2 * h, 2 * w, dtype=torch.float64)
    diff = pad.clone()
    diff[:, :, :feat_hw[0], :feat_hw[1]] = (student - teacher).double()
    a, b = diff[:, :, 0::2, 0::2], diff[:, :, 0::2, 1::2]
    c, d = diff[:, :, 1::2, 0::2], diff[:, :, 1::2, 1::2]
    low = (a + b + c + d) / 2
    highs = [(a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2]
    weight = torch.stack([brute_force(bx.float(), img, (h, w)) for bx in images])[:, None]
    exp_low = 0.7 * (weight * low**2).mean()
    exp_high = 1.3 * torch.stack([weight * hb**2 for hb in highs], dim=2).mean()
    assert float(out["loss_exp_low"]) == pytest.approx(float(exp_low), rel=1e-4, abs=1e-6)
    assert float(out["loss_exp_high"]) == pytest.approx(float(exp_high), rel=1e-4, abs=1e-6)
