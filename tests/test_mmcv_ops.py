"""The mmcv ops with a CPU implementation load and give the results of the reference build.

The environment builds mmcv 2.1.0 from source (tools/setup_env.sh: unity translation units,
``-g0 -O1``). ``tests/data/mmcv_ops_cpu.pt`` holds the outputs (and gradients) of every CPU op on
fixed inputs, computed with mmcv built file by file as it ships; this build must reproduce them:
integer outputs (indices, counts, coordinates) exactly, floating-point ones within
:data:`RELATIVE_TOLERANCE` of each tensor's largest value, at one thread and at two.
Regenerate only on purpose: ``python tests/test_mmcv_ops.py --write``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parent / "data" / "mmcv_ops_cpu.pt"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _boxes(n: int, seed: int, size: float = 64.0) -> torch.Tensor:
    g = _gen(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3 + 2
    return torch.cat([xy, xy + wh], 1)


def _rboxes(n: int, seed: int, size: float = 64.0) -> torch.Tensor:
    g = _gen(seed)
    return torch.cat([torch.rand(n, 2, generator=g) * size,
                      torch.rand(n, 2, generator=g) * size / 3 + 2,
                      (torch.rand(n, 1, generator=g) - 0.5) * 3.0], 1)


def _quads(n: int, seed: int) -> torch.Tensor:
    from mmcv.ops import box_iou_rotated  # noqa: F401  (imports the extension)

    r = _rboxes(n, seed)
    cx, cy, w, h, a = r.unbind(1)
    cos, sin = torch.cos(a), torch.sin(a)
    corners = []
    for dx, dy in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
        corners += [cx + dx * w * cos - dy * h * sin, cy + dx * w * sin + dy * h * cos]
    return torch.stack(corners, 1)


def _with_grad(fn: Callable, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Forward output and the gradients of a fixed random projection of it."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    weight = torch.randn(out.shape, generator=_gen(99))
    (out * weight).sum().backward()
    return {"out": out.detach(), **{f"grad{i}": x.grad for i, x in enumerate(leaves)}}


def compute_all() -> dict[str, dict[str, torch.Tensor]]:
    """Every CPU op of mmcv 2.1.0 on fixed inputs: name -> tensors."""
    import mmcv.ops as ops

    torch.manual_seed(0)
    res: dict[str, dict[str, torch.Tensor]] = {}
    boxes, scores = _boxes(40, 1), torch.rand(40, generator=_gen(2))
    dets, keep = ops.nms(boxes, scores, 0.5)
    res["nms"] = {"dets": dets, "keep": keep}
    dets, keep = ops.soft_nms(boxes, scores, 0.3, sigma=0.5, min_score=0.01, method="gaussian")
    res["soft_nms"] = {"dets": dets, "keep": keep}
    groups = ops.nms_match(torch.cat([boxes, scores[:, None]], 1), 0.5)
    res["nms_match"] = {f"g{i}": torch.as_tensor(g) for i, g in enumerate(groups)}
    labels = torch.randint(0, 3, (40,), generator=_gen(3))
    dets, keep = ops.batched_nms(boxes, scores, labels, dict(type="nms", iou_threshold=0.5))
    res["batched_nms"] = {"dets": dets, "keep": keep}
    rboxes = _rboxes(30, 4)
    dets, keep = ops.nms_rotated(rboxes, scores[:30], 0.3)
    res["nms_rotated"] = {"dets": dets, "keep": keep}
    quads = _quads(20, 5)
    dets, keep = ops.nms_quadri(quads, scores[:20], 0.3)
    res["nms_quadri"] = {"dets": dets, "keep": keep}
    res["box_iou_rotated"] = {m: ops.box_iou_rotated(rboxes[:12], rboxes[12:], mode=m)
                              for m in ("iou", "iof")}
    res["box_iou_rotated_aligned"] = {"iou": ops.box_iou_rotated(rboxes[:10], rboxes[10:20],
                                                                 aligned=True)}
    res["box_iou_quadri"] = {"iou": ops.box_iou_quadri(quads[:8], quads[8:])}
    res["bbox_overlaps"] = {m: ops.bbox_overlaps(boxes[:10], boxes[10:], mode=m)
                            for m in ("iou", "iof")}

    feat = torch.randn(2, 4, 20, 24, generator=_gen(6))
    rois = torch.cat([torch.tensor([[0.0], [1.0], [0.0], [1.0]]), _boxes(4, 7, 18)], 1)
    res["roi_align"] = _with_grad(
        lambda f: ops.roi_align(f, rois, (5, 5), 1.0, 2, "avg", True), feat)
    res["roi_align_max"] = _with_grad(
        lambda f: ops.roi_align(f, rois, (3, 4), 0.5, 0, "max", False), feat)
    rrois = torch.cat([torch.tensor([[0.0], [1.0], [1.0]]), _rboxes(3, 8, 16)], 1)
    res["roi_align_rotated"] = _with_grad(
        lambda f: ops.roi_align_rotated(f, rrois, (4, 4), 1.0, 2, True, False), feat)
    beziers = torch.cat([torch.tensor([[0.0], [1.0]]),
                         torch.rand(2, 16, generator=_gen(9)) * 18], 1)
    res["bezier_align"] = _with_grad(
        lambda f: ops.bezier_align(f, beziers, (4, 6), 1.0, 2, True), feat)

    x = torch.randn(1, 4, 9, 9, generator=_gen(10))
    offset = torch.randn(1, 2 * 9, 7, 7, generator=_gen(11)) * 0.8
    weight = torch.randn(6, 4, 3, 3, generator=_gen(12))
    res["deform_conv2d"] = _with_grad(
        lambda a, o, w: ops.deform_conv2d(a, o, w, 1, 0, 1, 1, 1), x, offset, weight)
    mask = torch.rand(1, 9, 7, 7, generator=_gen(13))
    bias = torch.randn(6, generator=_gen(14))
    res["modulated_deform_conv2d"] = _with_grad(
        lambda a, o, m, w: ops.modulated_deform_conv2d(a, o, m, w, bias, 1, 0, 1, 1, 1),
        x, offset, mask, weight)

    arf_in = torch.randn(4, 2, 8, 3, 3, generator=_gen(15))
    # (orientations, kH, kW, rotations), 1-based entries of the 8 * 3 * 3 filter
    indices = torch.randint(1, 73, (8, 3, 3, 8), generator=_gen(16), dtype=torch.int32)
    res["active_rotated_filter"] = _with_grad(
        lambda a: ops.active_rotated_filter(a, indices), arf_in)
    rfa_feat = torch.randn(1, 3, 8, 8, generator=_gen(17))
    best = torch.cat([torch.rand(1, 8, 8, 2, generator=_gen(18)) * 8,
                      torch.rand(1, 8, 8, 2, generator=_gen(19)) * 3 + 1,
                      torch.rand(1, 8, 8, 1, generator=_gen(20))], -1)
    res["rotated_feature_align"] = _with_grad(
        lambda f: ops.rotated_feature_align(f, best, 1 / 8, 1), rfa_feat)
    psa_in = torch.randn(1, 9, 4, 4, generator=_gen(21))
    for kind in ("collect", "distribute"):
        res[f"psamask_{kind}"] = _with_grad(
            lambda f, k=kind: ops.PSAMask(k, (3, 3))(f), psa_in)

    score = torch.rand(6, 6, generator=_gen(22))
    mask_pg = score > 0.3
    embedding = torch.randn(6, 6, 4, generator=_gen(23))
    kernel_label = torch.zeros(6, 6, dtype=torch.int32)
    kernel_label[1:3, 1:3], kernel_label[4:, 4:] = 1, 2
    kernel_contour = torch.zeros(6, 6, dtype=torch.uint8)
    groups = ops.pixel_group(score, mask_pg, embedding, kernel_label, kernel_contour, 3, 0.8)
    res["pixel_group"] = {f"g{i}": torch.as_tensor(g) for i, g in enumerate(groups)}

    points = torch.rand(1, 30, 3, generator=_gen(24)) * 10
    pboxes = torch.tensor([[[5.0, 5.0, 2.0, 4.0, 4.0, 6.0, 0.3], [2.0, 2.0, 1.0, 3.0, 3.0, 3.0,
                                                                 -0.5]]])
    res["points_in_boxes_cpu"] = {"out": ops.points_in_boxes_cpu(points, pboxes)}
    vox_points = torch.rand(50, 4, generator=_gen(25)) * torch.tensor([10.0, 10.0, 4.0, 1.0])
    voxels, coors, npoints = ops.Voxelization([1.0, 1.0, 1.0], [0, 0, 0, 10, 10, 4], 5, 40)(
        vox_points)
    res["hard_voxelize"] = {"voxels": voxels, "coors": coors, "npoints": npoints}
    res["dynamic_voxelize"] = {"coors": ops.Voxelization([1.0, 1.0, 1.0], [0, 0, 0, 10, 10, 4],
                                                         -1)(vox_points)}

    return res


#: Thread counts the comparison runs at (each op computed afresh at each).
THREADS = (1, 2)


@pytest.fixture(scope="module", params=THREADS, ids=[f"{n}thread" for n in THREADS])
def results(request) -> dict[str, dict[str, torch.Tensor]]:
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    try:
        return compute_all()
    finally:
        torch.set_num_threads(before)


def golden() -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(GOLDEN, weights_only=True)


def _ext_functions(path: Path) -> list[list[str]]:
    """The function lists of the ``ext_loader.load_ext('_ext', [...])`` calls in ``path``."""
    calls = [node for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call)
             and getattr(node.func, "attr", getattr(node.func, "id", None)) == "load_ext"]
    return [[e.value for e in call.args[1].elts] for call in calls]


def test_every_op_module_finds_the_extension_functions_it_declares():
    """Each mmcv op module names the functions it needs from the compiled ``mmcv._ext``
    (``ext_loader.load_ext('_ext', [...])``); every one is there and callable, and the module
    imports with ``ext_module`` bound to that extension."""
    import importlib
    import pkgutil

    import mmcv
    import mmcv.ops

    ext = importlib.import_module("mmcv._ext")
    assert Path(ext.__file__).resolve().is_relative_to(Path(mmcv.__file__).resolve().parent)
    cpu_less = {"conv2d_gradfix", "filtered_lrelu", "bias_act", "upfirdn2d"}  # JIT CUDA plugins
    declared: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(mmcv.ops.__path__):
        if info.name in cpu_less:
            continue
        source = Path(mmcv.ops.__path__[0]) / f"{info.name}.py"
        lists = _ext_functions(source)
        assert len(lists) == source.read_text().count("load_ext("), info.name  # none missed
        module = importlib.import_module(f"mmcv.ops.{info.name}")
        if lists:
            assert module.ext_module is ext, info.name
            declared[info.name] = [name for names in lists for name in names]
    missing = [(mod, name) for mod, names in declared.items() for name in names
               if not callable(getattr(ext, name, None))]
    assert missing == []
    # mmcv 2.1.0 (the CUDA-only JIT plugins left out): 48 modules declare 108 functions
    assert len(declared) == 48 and sum(map(len, declared.values())) == 108
    assert {"nms", "deform_conv", "modulated_deform_conv", "roi_align_rotated",
            "box_iou_rotated", "voxelize"} <= set(declared)


def test_golden_file_covers_every_cpu_op(results):
    assert set(results) == set(golden()) == set(OPS)


#: The ops of compute_all: every mmcv 2.1.0 op that its Python API runs on the CPU (the sparse
#: convolution helpers compiled for the CPU are not reachable there: mmcv's get_indice_pairs has
#: no CPU implementation; they are covered by the import test).
OPS = ("nms", "soft_nms", "nms_match", "batched_nms", "nms_rotated", "nms_quadri",
       "box_iou_rotated", "box_iou_rotated_aligned", "box_iou_quadri", "bbox_overlaps",
       "roi_align", "roi_align_max", "roi_align_rotated", "bezier_align", "deform_conv2d",
       "modulated_deform_conv2d", "active_rotated_filter", "rotated_feature_align",
       "psamask_collect", "psamask_distribute", "pixel_group", "points_in_boxes_cpu",
       "hard_voxelize", "dynamic_voxelize")


#: Largest difference allowed between a floating-point output and the reference, as a share of
#: the reference tensor's largest magnitude. Measured on 2026-12-03 (2-core Xeon, AVX-512, torch
#: 2.14.1 with MKL): every op identical to the reference at 1, 2, 3, 4, 8 and 16 threads; with
#: MKL held to its AVX2 kernels (MKL_ENABLE_INSTRUCTIONS=AVX2, as on a CPU without AVX-512) the
#: two deformable convolutions differ by up to 9.5e-7 absolute (1.2e-7 of the tensor's largest
#: value), with its SSE4.2 kernels by up to 3.8e-6 (3.0e-7 relative), at 1 and 2 threads alike:
#: the GEMM behind them sums in another order, a few float32 ulps. 1e-5 leaves a margin of 30x
#: over the largest measured difference while a wrong result (a changed offset, weight or
#: sampling rule) moves the outputs by 1e-2 and more.
RELATIVE_TOLERANCE = 1e-5


@pytest.mark.parametrize("name", OPS)
def test_op_reproduces_the_reference_build(name, results):
    ref = golden()[name]
    assert set(results[name]) == set(ref), name
    for key, value in ref.items():
        got = results[name][key]
        assert got.dtype == value.dtype and got.shape == value.shape, (name, key)
        if not value.is_floating_point():
            assert torch.equal(got, value), (name, key)
            continue
        scale = value.abs().max().item() if value.numel() else 0.0
        diff = (got.double() - value.double()).abs().max().item() if value.numel() else 0.0
        assert diff <= RELATIVE_TOLERANCE * max(scale, 1.0), (name, key, diff, scale)


def test_nms_keeps_the_best_of_overlapping_boxes():
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)


def test_roi_align_averages_a_constant_map():
    from mmcv.ops import RoIAlign

    feat = torch.full((1, 2, 16, 16), 3.0)
    rois = torch.tensor([[0, 2.0, 2.0, 10.0, 10.0]])
    out = RoIAlign(output_size=(4, 4), spatial_scale=1.0, sampling_ratio=2)(feat, rois)
    assert out.shape == (1, 2, 4, 4)
    assert torch.allclose(out, torch.full_like(out, 3.0))


def test_box_iou_rotated_matches_axis_aligned_iou():
    from mmcv.ops import box_iou_rotated

    a = torch.tensor([[5.0, 5.0, 10.0, 10.0, 0.0]])
    b = torch.tensor([[10.0, 5.0, 10.0, 10.0, 0.0]])
    iou = box_iou_rotated(a, b)
    assert abs(iou.item() - 50.0 / 150.0) < 1e-4


def test_nms_rotated_suppresses_duplicates():
    from mmcv.ops import nms_rotated

    boxes = torch.tensor([[5.0, 5.0, 10.0, 4.0, 0.3], [5.0, 5.0, 10.0, 4.0, 0.31],
                          [40.0, 40.0, 10.0, 4.0, 0.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms_rotated(boxes, scores, 0.5)
    assert sorted(keep.tolist()) == [0, 2]


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save(compute_all(), GOLDEN)
    print(f"wrote {GOLDEN}")
