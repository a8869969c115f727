"""The dense families (FCOS, ATSS, GFL, RTMDet; RTMDet-R in test_rotated_rtmdet.py): every
implicit KD term of SpectralDistiller.loss against the published single-stage rule written out
here, the strategy chosen from the student's head, and the exported student in the family's
stock config.

The oracles share nothing with ``ds2d2_mm``: priors, decoding (distances, deltas, distribution
expectations, oriented boxes), BCE, GIoU and the Gaussian KL distance are plain arithmetic here.
Only mmdet's and mmrotate's own modules are called: the detectors' forward passes, the heads'
anchors and their own ``get_targets`` (the assigners: ATSS, dynamic soft labels, FCOS's ranges).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch
from families_testlib import tiny_dense, tiny_rtmdet
from test_published_formulas import BOXES, bce_with_soft_target, giou, hf_map, perturb, sigmoid

REL = 1e-4
IMPLICIT = ("loss_imp_full_cls", "loss_imp_full_reg", "loss_imp_high_cls", "loss_imp_high_reg")
WEIGHTS = dict(amplifiers=dict(full=0.9, high=1.3))


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------
def per_prior(maps: list[torch.Tensor], dim: int) -> torch.Tensor:
    """(N, dim, H, W) per level -> (N, sum_l H W, dim), row-major locations, level by level."""
    n = maps[0].shape[0]
    return torch.cat([m.permute(0, 2, 3, 1).reshape(n, -1, dim) for m in maps], dim=1)


def grid_points(sizes, strides, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, 2) point priors ((j + offset) * s, (i + offset) * s) row by row, and (A,) strides."""
    pts, st = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        for i in range(h):
            for j in range(w):
                pts.append(((j + offset) * s, (i + offset) * s))
                st.append(float(s))
    return torch.tensor(pts, dtype=torch.float64), torch.tensor(st, dtype=torch.float64)


def ltrb_boxes(points: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Boxes (x - l, y - t, x + r, y + b)."""
    x, y = points[:, 0], points[:, 1]
    return torch.stack([x - dist[:, 0], y - dist[:, 1], x + dist[:, 2], y + dist[:, 3]], dim=1)


def delta_boxes(anchors: torch.Tensor, deltas: torch.Tensor, stds) -> torch.Tensor:
    """Delta decoding (means 0, ``stds``, dw/dh clipped at |log(16/1000)|)."""
    clip = abs(math.log(16 / 1000))
    d = deltas * torch.tensor(stds, dtype=deltas.dtype)
    px, py = (anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2
    pw, ph = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    gx, gy = px + pw * d[:, 0], py + ph * d[:, 1]
    gw, gh = pw * torch.exp(d[:, 2].clamp(-clip, clip)), ph * torch.exp(d[:, 3].clamp(-clip, clip))
    return torch.stack([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], dim=1)


def expectation(logits: torch.Tensor, reg_max: int) -> torch.Tensor:
    """GFL: per side, the mean of 0..reg_max under softmax(logits): (A, 4 * (n + 1)) -> (A, 4)."""
    p = torch.softmax(logits.reshape(-1, 4, reg_max + 1), dim=2)
    return (p * torch.arange(reg_max + 1, dtype=p.dtype)).sum(dim=2)


def rotated_boxes(points: torch.Tensor, ltrb: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h, a): w = l + r, h = t + b, centre = point + R(a) ((r - l) / 2, (b - t) / 2)."""
    left, top, right, bottom = ltrb.unbind(dim=1)
    ox, oy = (right - left) / 2, (bottom - top) / 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([points[:, 0] + cos * ox - sin * oy, points[:, 1] + sin * ox + cos * oy,
                        left + right, top + bottom, angle], dim=1)


def gaussian(box: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (2,) and covariance R diag(w^2 / 4, h^2 / 4) R^T of an oriented box."""
    cx, cy, w, h, a = box.tolist()
    w, h = max(w, 1e-7), max(h, 1e-7)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]],
                       dtype=torch.float64)
    return (torch.tensor([cx, cy], dtype=torch.float64),
            rot @ torch.diag(torch.tensor([w * w / 4, h * h / 4], dtype=torch.float64)) @ rot.T)


def kld_kd(box_s: torch.Tensor, box_t: torch.Tensor) -> float:
    """The Gaussian KL KD of two oriented boxes: d = KL(N_t || N_s), then
    1 - 1 / (1 + log(1 + sqrt(d)))."""
    mu_s, cov_s = gaussian(box_s)
    mu_t, cov_t = gaussian(box_t)
    inv = torch.linalg.inv(cov_s)
    dm = mu_s - mu_t
    kl = 0.5 * (torch.trace(inv @ cov_t) + dm @ inv @ dm - 2
                + math.log(torch.linalg.det(cov_s) / torch.linalg.det(cov_t)))
    d = math.sqrt(max(float(kl), 1e-7))
    return 1 - 1 / (1 + math.log1p(d))


def dense_kd(ls, lt, boxes_s, boxes_t, label_weights, num_pos, rotated=False):
    """The published single-stage rule on (A, C) logits and (A, D) boxes of one image:
    sum_a w_a sum_c BCE(s, sigma(t)) |sigma(s) - sigma(t)|, and sum_a max_c sigma(t_ac) *
    box_loss(a), each divided by the number of positives (summed over images by the caller)."""
    p_t = sigmoid(lt)
    cls = (label_weights[:, None] * bce_with_soft_target(ls, p_t) * (sigmoid(ls) - p_t).abs())
    top = sigmoid(lt.max(dim=1).values)
    if rotated:
        box = torch.tensor([kld_kd(boxes_s[a], boxes_t[a]) for a in range(len(boxes_s))],
                           dtype=torch.float64)
    else:
        box = 1 - giou(boxes_s, boxes_t)
    return cls.sum().item() / num_pos, (top * box).sum().item() / num_pos


# ---------------------------------------------------------------------------------------------
# Per family: outputs -> (logits, boxes) of every image, and the student's own targets
# ---------------------------------------------------------------------------------------------
def decode(family: str, head, outs, sizes) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, A, C) logits and (N, A, D) boxes (float64) of one head call."""
    n = outs[0][0].shape[0]
    strides = [s[0] for s in head.prior_generator.strides]
    logits = per_prior(outs[0], head.cls_out_channels).double()
    boxes = []
    if family in ("atss", "gfl"):
        anchors = torch.cat(head.prior_generator.grid_priors(sizes, device="cpu")).double()
    for i in range(n):
        if family == "fcos":  # eval mode: distances in pixels; points at offset 0.5
            pts, _ = grid_points(sizes, strides, 0.5)
            boxes.append(ltrb_boxes(pts, per_prior(outs[1], 4)[i].double()))
        elif family == "atss":
            boxes.append(delta_boxes(anchors, per_prior(outs[1], 4)[i].double(),
                                     (0.1, 0.1, 0.2, 0.2)))
        elif family == "gfl":
            _, st = grid_points(sizes, strides, 0.0)
            dist = expectation(per_prior(outs[1], 4 * (head.reg_max + 1))[i].double(),
                               head.reg_max) * st[:, None]
            centers = torch.stack([(anchors[:, 0] + anchors[:, 2]) / 2,
                                   (anchors[:, 1] + anchors[:, 3]) / 2], dim=1)
            boxes.append(ltrb_boxes(centers, dist))
        else:  # RTMDet(-R): points at offset 0, distances in pixels, clamped at 0 (1 px for
            # oriented boxes; the project's rule)
            pts, _ = grid_points(sizes, strides, 0.0)
            dist = per_prior(outs[1], 4)[i].double().clamp(min=0 if family == "rtmdet" else 1)
            if family == "rtmdet":
                boxes.append(ltrb_boxes(pts, dist))
            else:
                boxes.append(rotated_boxes(pts, dist, per_prior(outs[2], 1)[i, :, 0].double()))
    return logits, torch.stack(boxes)


def student_targets(family: str, student, x, samples) -> tuple[torch.Tensor, int]:
    """(N, A) label weights and the number of positives from the student head's own
    ``get_targets``, called as its ``loss_by_feat`` calls it."""
    return head_targets(family, student.bbox_head, student.bbox_head(x), samples)


def head_targets(family: str, head, outs, samples) -> tuple[torch.Tensor, int]:
    """(N, A) label weights and the number of positives from ``head``'s own ``get_targets`` for
    its outputs ``outs`` (the dynamic soft-label assigner reads them)."""
    sizes = [c.shape[-2:] for c in outs[0]]
    metas = [s.metainfo for s in samples]
    gts = [s.gt_instances for s in samples]
    n = len(samples)
    if family == "fcos":
        points = head.prior_generator.grid_priors(sizes, dtype=outs[1][0].dtype, device="cpu")
        labels_lv, _ = head.get_targets(points, gts)
        labels = torch.cat([lv.reshape(n, -1) for lv in labels_lv], dim=1)
        weights = torch.ones_like(labels, dtype=torch.float64)
    elif family in ("atss", "gfl"):
        anchors, valid = head.get_anchors(sizes, metas, device="cpu")
        out = head.get_targets(anchors, valid, gts, metas)
        labels, weights = torch.cat(out[1], dim=1), torch.cat(out[2], dim=1).double()
    else:  # the dynamic soft-label assigner reads the student's logits and unclamped boxes
        anchors, valid = head.get_anchors(sizes, metas, device="cpu")
        pts, _ = grid_points(sizes, [s[0] for s in head.prior_generator.strides], 0.0)
        logits = per_prior(outs[0], head.cls_out_channels)
        dist = per_prior(outs[1], 4).double()
        if family == "rtmdet":
            boxes = torch.stack([ltrb_boxes(pts, dist[i]) for i in range(n)])
        else:
            angle = per_prior(outs[2], 1).double()[..., 0]
            boxes = torch.stack([rotated_boxes(pts, dist[i], angle[i]) for i in range(n)])
        out = head.get_targets(logits.detach(), boxes.float().detach(), anchors, valid, gts,
                               metas)
        labels, weights = torch.cat(out[1], dim=1), torch.cat(out[2], dim=1).double()
    num_pos = int(((labels >= 0) & (labels < head.num_classes)).sum())
    return weights, num_pos


def implicit_oracle(family, model, inputs, samples) -> dict[str, float]:
    """Every implicit term of ``model`` (same-family pair, equal FPN channels) by the formulas."""
    family = "rtmdet" if family == "rtmdet_shared" else family
    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(inputs))
        weights, num_pos = student_targets(family, model.student, x, samples)
    assert num_pos > 0
    ref = {}
    for amp, w in zip(model.amplifiers, (0.9, 1.3), strict=True):
        xs, ts = (x, t) if amp.name == "full" else ([hf_map(f) for f in x], [hf_map(f) for f in t])
        with torch.no_grad():
            out_s, out_t = amp.head(xs), amp.head(ts)
        sizes = [c.shape[-2:] for c in out_t[0]]
        ls, bs = decode(family, amp.head, out_s, sizes)
        lt, bt = decode(family, amp.head, out_t, sizes)
        cls, reg = 0.0, 0.0
        for i in range(len(samples)):
            c, r = dense_kd(ls[i], lt[i], bs[i], bt[i], weights[i], num_pos,
                            rotated=family == "rotated_rtmdet")
            cls, reg = cls + c, reg + r
        ref[f"loss_imp_{amp.name}_cls"], ref[f"loss_imp_{amp.name}_reg"] = w * cls, w * reg
    return ref


def horizontal_batch(model, size=160):
    inputs, samples = make_batch(model, batch_size=2, size=size, num_boxes=[3, 2])
    for s, b in zip(samples, BOXES, strict=True):
        s.gt_instances.bboxes = b.clone()
        s.gt_instances.labels = torch.arange(len(b)) % 3
    return inputs, samples


def check(losses, ref):
    for key in IMPLICIT:
        got = float(losses[key])
        assert ref[key] != 0, key
        assert got == pytest.approx(ref[key], rel=REL, abs=1e-9), (key, got, ref[key])


def shared_rtmdet(widen: float, fpn: int) -> dict:
    """RTMDet with mmdet's plain ``RTMDetHead`` (convs and BN shared by the levels, objectness
    branch on) in the separate-BN head's place."""
    cfg = tiny_rtmdet(widen=widen, fpn=fpn)
    head = cfg["bbox_head"]
    for key in ("share_conv", "exp_on_reg", "use_depthwise"):
        head.pop(key, None)
    head.update(type="RTMDetHead", with_objectness=True)
    return cfg


TINY = {"fcos": lambda w, f: tiny_dense("fcos", width=w, fpn=f),
        "atss": lambda w, f: tiny_dense("atss", width=w, fpn=f),
        "gfl": lambda w, f: tiny_dense("gfl", width=w, fpn=f),
        "rtmdet": lambda w, f: tiny_rtmdet(widen=w / 64, fpn=f),
        "rtmdet_shared": lambda w, f: shared_rtmdet(widen=w / 64, fpn=f)}
STRATEGY = {"fcos": "FCOSStrategy", "atss": "ATSSStrategy", "gfl": "GFLStrategy",
            "rtmdet": "RTMDetStrategy", "rtmdet_shared": "RTMDetStrategy"}


@pytest.mark.parametrize("family", sorted(TINY))
def test_implicit_terms_equal_the_published_rule(family):
    model = build(distiller_cfg(TINY[family](8, 16), TINY[family](16, 16), **WEIGHTS))
    assert type(model.strategy).__name__ == STRATEGY[family]
    assert model.amplifier_reads_raw and not model.pair.heterogeneous
    assert type(model.kd_cls).__name__ == "KDQualityFocalLoss" and model.kd_cls.beta == 1.0
    assert type(model.kd_reg).__name__ == "GIoULoss"
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 10 + i)
    model.train()
    inputs, samples = horizontal_batch(model)
    losses = model.loss(inputs, samples)
    check(losses, implicit_oracle(family, model, inputs, samples))


# ---------------------------------------------------------------------------------------------
# Exported students load in the family's stock config and predict the same boxes
# ---------------------------------------------------------------------------------------------
def predicting(cfg: dict) -> dict:
    """``cfg`` keeping every scored box (random heads score about 0.01); RTMDet's linear
    distances as exponentials (RTMDet-l's ``exp_on_reg``), or a random head's boxes are
    inverted and dropped."""
    cfg["test_cfg"].update(score_thr=0.0, max_per_img=50)
    if "exp_on_reg" in cfg["bbox_head"]:
        cfg["bbox_head"]["exp_on_reg"] = True
    return cfg


@pytest.mark.parametrize("family", sorted(TINY))
def test_exported_student_predicts_the_same_in_the_stock_config(family, tmp_path):
    from mmengine.runner import load_checkpoint

    from ds2d2_mm.apis.export_student import export_student

    model = build(distiller_cfg(predicting(TINY[family](8, 16)), TINY[family](16, 32)))
    perturb(model.student, 60)
    ckpt = tmp_path / "distiller.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 1}}, ckpt)
    export_student(str(ckpt), str(tmp_path / "student.pth"))
    stock = build(predicting(TINY[family](8, 16)))  # the family's own config, other weights
    torch.manual_seed(123)
    perturb(stock, 7)
    load_checkpoint(stock, str(tmp_path / "student.pth"), map_location="cpu", strict=True)
    model.eval()
    stock.eval()
    inputs, samples = make_batch(stock, size=96, training=False)
    with torch.no_grad():
        ours = model.predict(inputs, copy.deepcopy(samples))
        theirs = stock.predict(inputs, copy.deepcopy(samples))
    for a, b in zip(ours, theirs, strict=True):
        assert len(a.pred_instances) > 0
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
        assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)
