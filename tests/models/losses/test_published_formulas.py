"""Every DS2D2 term of SpectralDistiller.loss against a direct re-computation of its published
formula (issue "The published recipe, exactly").

The oracles below are written from the formulas alone: Haar sub-bands, DISW maps, BCE, GIoU,
delta decoding, softmax and KL are loops or plain arithmetic here, sharing nothing with
``ds2d2_mm``. Only mmdet's own modules are called (the detectors' forward passes, the anchor
assigner's targets, RoIAlign), and the RoIs that the student's RoI head sampled are read off its
``bbox_loss`` call by the test's own wrapper.
"""

from __future__ import annotations

import math

import pytest
import torch
from ds2d2_testlib import (
    build,
    distiller_cfg,
    loss_and_sampled_rois,
    make_batch,
    tiny_faster_rcnn,
    tiny_retinanet,
)

REL = 1e-4
TERMS = ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_full_reg",
         "loss_imp_high_cls", "loss_imp_high_reg")


# ---------------------------------------------------------------------------------------------
# Oracles: the published formulas, written out
# ---------------------------------------------------------------------------------------------
def haar_bands(x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One-level orthonormal Haar DWT with zero padding, block by block.

    x: (N, C, H, W) -> LL (N, C, h, w) and [LH, HL, HH], h = ceil(H / 2), w = ceil(W / 2).
    For the block [[a, b], [c, d]]: LL = (a+b+c+d)/2, LH = (a+b-c-d)/2, HL = (a-b+c-d)/2,
    HH = (a-b-c+d)/2 (pytorch_wavelets' band order and signs, checked below).
    """
    n, c, height, width = x.shape
    h, w = (height + 1) // 2, (width + 1) // 2
    padded = x.new_zeros(n, c, 2 * h, 2 * w)
    padded[:, :, :height, :width] = x
    ll, lh, hl, hh = (x.new_zeros(n, c, h, w) for _ in range(4))
    for i in range(h):
        for j in range(w):
            a = padded[:, :, 2 * i, 2 * j]
            b = padded[:, :, 2 * i, 2 * j + 1]
            cc = padded[:, :, 2 * i + 1, 2 * j]
            d = padded[:, :, 2 * i + 1, 2 * j + 1]
            ll[:, :, i, j] = (a + b + cc + d) / 2
            lh[:, :, i, j] = (a + b - cc - d) / 2
            hl[:, :, i, j] = (a - b + cc - d) / 2
            hh[:, :, i, j] = (a - b - cc + d) / 2
    return ll, [lh, hl, hh]


def test_haar_oracle_matches_pytorch_wavelets():
    """The oracle's bands are pytorch_wavelets' DWTForward(J=1, 'haar', mode='zero'), odd sizes
    included (the published code's transform)."""
    from pytorch_wavelets import DWTForward

    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    low, highs = haar_bands(x)
    ref_low, ref_high = DWTForward(J=1, wave="haar", mode="zero").double()(x)
    assert torch.allclose(low, ref_low, atol=1e-12)
    for k in range(3):
        assert torch.allclose(highs[k], ref_high[0][:, :, k], atol=1e-12)


def hf_map(x: torch.Tensor) -> torch.Tensor:
    """LH + HL + HH, upsampled bilinearly back to x's size."""
    _, highs = haar_bands(x)
    total = highs[0] + highs[1] + highs[2]
    return torch.nn.functional.interpolate(total, size=x.shape[-2:], mode="bilinear",
                                           align_corners=False)


def disw_map(boxes: torch.Tensor, img_hw: tuple[int, int], grid_hw: tuple[int, int]):
    """w = 1 + sum over boxes covering a cell of 1 / (cells of the box), box loops."""
    height, width = img_hw
    gh, gw = grid_hw
    out = torch.ones(gh, gw, dtype=torch.float64)
    for x1, y1, x2, y2 in boxes.tolist():
        c1 = max(math.floor(x1 * gw / width), 0)
        r1 = max(math.floor(y1 * gh / height), 0)
        c2 = min(math.ceil(x2 * gw / width), gw - 1)
        r2 = min(math.ceil(y2 * gh / height), gh - 1)
        if c1 > c2 or r1 > r2:
            continue
        area = (c2 - c1 + 1) * (r2 - r1 + 1)
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                out[r, c] += 1.0 / area
    return out


def explicit_terms(adapted, teacher, boxes, img_hw):
    """sum_l mean(w (LL_s - LL_t)^2) and sum_l mean(w (H_s - H_t)^2) over the 3 high bands."""
    low, high = 0.0, 0.0
    for a, t in zip(adapted, teacher, strict=True):
        ll_s, hs = haar_bands(a.double())
        ll_t, ht = haar_bands(t.double())
        grid = tuple(ll_s.shape[-2:])
        w = torch.stack([disw_map(b, img_hw, grid) for b in boxes])[:, None]  # (N, 1, h, w)
        low += (w * (ll_s - ll_t) ** 2).mean().item()
        high += torch.stack([w * (hs[k] - ht[k]) ** 2 for k in range(3)], dim=2).mean().item()
    return low, high


def bce_with_soft_target(s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """-(p log sigma(s) + (1 - p) log(1 - sigma(s))), in a stable form."""
    return torch.clamp(s, min=0) - s * p + torch.log1p(torch.exp(-s.abs()))


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def decode(anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """RetinaNet's delta decoding (means 0, stds 1, dw/dh clipped at |log(16/1000)|)."""
    clip = abs(math.log(16 / 1000))
    px = (anchors[:, 0] + anchors[:, 2]) / 2
    py = (anchors[:, 1] + anchors[:, 3]) / 2
    pw = anchors[:, 2] - anchors[:, 0]
    ph = anchors[:, 3] - anchors[:, 1]
    dx, dy = deltas[:, 0], deltas[:, 1]
    dw, dh = deltas[:, 2].clamp(-clip, clip), deltas[:, 3].clamp(-clip, clip)
    gx, gy = px + pw * dx, py + ph * dy
    gw, gh = pw * torch.exp(dw), ph * torch.exp(dh)
    return torch.stack([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], dim=1)


def giou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised IoU of aligned (M, 4) boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = (area_a + area_b - inter).clamp(min=eps)
    ew = torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0])
    eh = torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])
    enclose = (ew * eh).clamp(min=eps)
    return inter / union - (enclose - union) / enclose


def per_anchor(maps: list[torch.Tensor], dim: int) -> torch.Tensor:
    """(N, A * dim, H, W) per level -> (N, sum_l H W A, dim), mmdet's anchor order."""
    n = maps[0].shape[0]
    return torch.cat([m.permute(0, 2, 3, 1).reshape(n, -1, dim) for m in maps], dim=1)


def retina_kd(head, feats_s, feats_t, label_weights, num_pos, anchors):
    """Published single-stage KD of one amplifier (beta = 1)."""
    with torch.no_grad():
        cls_s, reg_s = head(feats_s)
        cls_t, reg_t = head(feats_t)
    c = head.cls_out_channels
    ls, lt = per_anchor(cls_s, c).double(), per_anchor(cls_t, c).double()
    ds, dt = per_anchor(reg_s, 4).double(), per_anchor(reg_t, 4).double()
    cls_sum, reg_sum = 0.0, 0.0
    for n in range(ls.shape[0]):
        p_t = sigmoid(lt[n])
        modulated = bce_with_soft_target(ls[n], p_t) * (sigmoid(ls[n]) - p_t).abs()
        cls_sum += (label_weights[n][:, None] * modulated).sum().item()
        boxes_s, boxes_t = decode(anchors, ds[n]), decode(anchors, dt[n])
        top = sigmoid(lt[n].max(dim=1).values)
        reg_sum += (top * (1 - giou(boxes_s, boxes_t))).sum().item()
    return cls_sum / num_pos, reg_sum / num_pos


def rcnn_kd(roi_head, feats_s, feats_t, rois, temperature=3.0):
    """Published two-stage KD of one amplifier on the given RoIs."""
    with torch.no_grad():
        out_s = roi_head._bbox_forward(feats_s, rois)
        out_t = roi_head._bbox_forward(feats_t, rois)
    ls, lt = out_s["cls_score"].double(), out_t["cls_score"].double()
    ds, dt = out_s["bbox_pred"].double(), out_t["bbox_pred"].double()
    kl_sum = 0.0
    conf_sum, l1_sum = 0.0, 0.0
    for i in range(ls.shape[0]):
        q_s = torch.exp(ls[i] / temperature) / torch.exp(ls[i] / temperature).sum()
        q_t = torch.exp(lt[i] / temperature) / torch.exp(lt[i] / temperature).sum()
        kl_sum += (q_t * (torch.log(q_t) - torch.log(q_s))).sum().item()
        probs = torch.exp(lt[i]) / torch.exp(lt[i]).sum()
        fg = probs[:-1]  # mmdet puts background last
        k = int(fg.argmax())
        conf = fg[k].item()
        l1 = sum(abs(ds[i, 4 * k + j].item() - dt[i, 4 * k + j].item()) for j in range(4))
        conf_sum += conf
        l1_sum += conf * l1
    return 0.5 * temperature**2 * kl_sum, l1_sum / (4 * conf_sum)


# ---------------------------------------------------------------------------------------------
# Fixtures: tiny student/teacher pairs with equal FPN channels (the published case)
# ---------------------------------------------------------------------------------------------
BOXES = [torch.tensor([[10.0, 12.0, 60.0, 50.0], [70.0, 20.0, 120.0, 90.0],
                       [30.0, 100.0, 44.0, 118.0]]),
         torch.tensor([[5.0, 5.0, 90.0, 70.0], [100.0, 80.0, 150.0, 150.0]])]
WEIGHTS = dict(explicit=dict(type="DISWLoss", lambda_low=0.3, lambda_high=0.7),
               amplifiers=dict(full=0.9, high=1.3))


def batch(model, size=160):
    inputs, samples = make_batch(model, batch_size=2, size=size, num_boxes=[3, 2])
    for s, b in zip(samples, BOXES, strict=True):
        s.gt_instances.bboxes = b.clone()
        s.gt_instances.labels = torch.arange(len(b)) % 3
    return inputs, samples


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights (random init gives near-constant scores)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def check(ours: dict, ref: dict) -> None:
    for key in TERMS:
        got = float(ours[key])
        assert got == pytest.approx(ref[key], rel=REL, abs=1e-9), (key, got, ref[key])
        assert ref[key] != 0, key


def test_retinanet_terms_equal_the_published_formulas():
    cfg = distiller_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=16),
                        **WEIGHTS)
    model = build(cfg)
    assert model.amplifier_reads_raw
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 10 + i)
    model.train()
    inputs, samples = batch(model)
    losses = model.loss(inputs, samples)

    student, teacher = model.student, model.teacher
    with torch.no_grad():
        x = list(student.extract_feat(inputs))
        t = list(teacher.extract_feat(inputs))
        adapter = model.connector.convs[0]
        assert adapter.bias is None  # published: no bias
        a = [torch.einsum("oi,nihw->nohw", adapter.weight[:, :, 0, 0], f) for f in x]
    img_hw = tuple(inputs.shape[-2:])
    boxes = [s.gt_instances.bboxes for s in samples]
    low, high = explicit_terms(a, t, boxes, img_hw)

    # the assigner's label weights and positives (mmdet's own target assignment)
    head = student.bbox_head
    sizes = [f.shape[-2:] for f in x]
    metas = [s.metainfo for s in samples]
    anchor_list, valid_list = head.get_anchors(sizes, metas, device="cpu")
    targets = head.get_targets(anchor_list, valid_list, [s.gt_instances for s in samples], metas)
    labels = torch.cat(targets[0], dim=1)
    label_weights = torch.cat(targets[1], dim=1).double()
    num_pos = int(((labels >= 0) & (labels < head.num_classes)).sum())
    assert num_pos > 0
    anchors = torch.cat(anchor_list[0]).double()

    full_amp, high_amp = (a_.head for a_ in model.amplifiers)
    assert full_amp is teacher.bbox_head
    full_cls, full_reg = retina_kd(full_amp, x, t, label_weights, num_pos, anchors)
    high_cls, high_reg = retina_kd(high_amp, [hf_map(f) for f in x], [hf_map(f) for f in t],
                                   label_weights, num_pos, anchors)
    check(losses, {"loss_exp_low": 0.3 * low, "loss_exp_high": 0.7 * high,
                   "loss_imp_full_cls": 0.9 * full_cls, "loss_imp_full_reg": 0.9 * full_reg,
                   "loss_imp_high_cls": 1.3 * high_cls, "loss_imp_high_reg": 1.3 * high_reg})


def test_faster_rcnn_terms_equal_the_published_formulas():
    cfg = distiller_cfg(tiny_faster_rcnn(width=8, fpn=16), tiny_faster_rcnn(width=16, fpn=16),
                        **WEIGHTS)
    model = build(cfg)
    assert model.amplifier_reads_raw
    assert type(model.kd_cls).__name__ == "KDKLDivLoss" and type(model.kd_reg).__name__ == "L1Loss"
    for i, amp in enumerate(model.amplifiers):
        perturb(amp.head, 20 + i)
    model.train()
    inputs, samples = batch(model)

    losses, rois = loss_and_sampled_rois(model, inputs, samples)
    assert len(rois) > 10

    with torch.no_grad():
        x = list(model.student.extract_feat(inputs))
        t = list(model.teacher.extract_feat(inputs))
        w = model.connector.convs[0].weight[:, :, 0, 0]
        a = [torch.einsum("oi,nihw->nohw", w, f) for f in x]
    low, high = explicit_terms(a, t, [s.gt_instances.bboxes for s in samples],
                               tuple(inputs.shape[-2:]))
    full_amp, high_amp = (a_.head for a_ in model.amplifiers)
    assert full_amp is model.teacher.roi_head
    full_cls, full_reg = rcnn_kd(full_amp, x, t, rois)
    high_cls, high_reg = rcnn_kd(high_amp, [hf_map(f) for f in x], [hf_map(f) for f in t], rois)
    check(losses, {"loss_exp_low": 0.3 * low, "loss_exp_high": 0.7 * high,
                   "loss_imp_full_cls": 0.9 * full_cls, "loss_imp_full_reg": 0.9 * full_reg,
                   "loss_imp_high_cls": 1.3 * high_cls, "loss_imp_high_reg": 1.3 * high_reg})


# ---------------------------------------------------------------------------------------------
# The amplifiers read the raw student maps; the adapter belongs to the explicit stream
# ---------------------------------------------------------------------------------------------
def test_amplifier_terms_do_not_depend_on_the_adapter_when_channels_match():
    model = build(distiller_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=16)))
    model.train()
    inputs, samples = batch(model, size=96)
    before = model.loss(inputs, samples)
    with torch.no_grad():
        model.connector.convs[0].weight.mul_(-3.0)
    after = model.loss(inputs, samples)
    for key in ("loss_imp_full_cls", "loss_imp_full_reg", "loss_imp_high_cls",
                "loss_imp_high_reg"):
        assert torch.allclose(before[key], after[key], rtol=1e-6), key
    assert not torch.allclose(before["loss_exp_low"], after["loss_exp_low"])
    # and the adapter gets no gradient from the implicit stream
    model.zero_grad()
    sum(after[k] for k in ("loss_imp_full_cls", "loss_imp_full_reg")).backward()
    assert model.connector.convs[0].weight.grad is None
    assert model.student.backbone.conv1.weight.grad is not None


def test_other_teacher_channels_feed_the_adapted_maps_and_raw_is_refused():
    student, teacher = tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=32)
    model = build(distiller_cfg(student, teacher))
    assert not model.amplifier_reads_raw
    model.train()
    inputs, samples = batch(model, size=96)
    losses = model.loss(inputs, samples)
    assert all(torch.isfinite(losses[k]) for k in TERMS)
    with pytest.raises(ValueError, match=r"amplifier_input='raw'.*\(16\).*\(32\)"):
        build(distiller_cfg(student, teacher, amplifier_input="raw"))


def test_adapter_has_no_bias_unless_asked():
    plain = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16)))
    assert plain.connector.convs[0].bias is None
    biased = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16),
                                 explicit=dict(type="DISWLoss", adapter_bias=True)))
    assert biased.connector.convs[0].bias is not None


# ---------------------------------------------------------------------------------------------
# Defaults per family, and KD losses that do not fit are refused at build time
# ---------------------------------------------------------------------------------------------
def test_family_defaults_are_the_published_kd_losses():
    retina = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16)))
    assert type(retina.kd_cls).__name__ == "KDQualityFocalLoss" and retina.kd_cls.beta == 1.0
    assert type(retina.kd_reg).__name__ == "GIoULoss"
    rcnn = build(distiller_cfg(tiny_faster_rcnn(), tiny_faster_rcnn(width=16)))
    assert type(rcnn.kd_cls).__name__ == "KDKLDivLoss"
    assert (rcnn.kd_cls.temperature, rcnn.kd_cls.loss_weight, rcnn.kd_cls.reduction) == (
        3.0, 0.5, "sum")
    assert type(rcnn.kd_reg).__name__ == "L1Loss"
    # a dict without type updates the family default
    tuned = build(distiller_cfg(tiny_faster_rcnn(), tiny_faster_rcnn(width=16),
                                kd_cls=dict(temperature=2.0)))
    assert (tuned.kd_cls.temperature, tuned.kd_cls.loss_weight) == (2.0, 0.5)


@pytest.mark.parametrize("family,key,loss,says", [
    ("rcnn", "kd_reg", dict(type="GIoULoss"), "regression deltas"),
    ("rcnn", "kd_reg", dict(type="IoULoss"), "regression deltas"),
    ("rcnn", "kd_cls", dict(type="KDQualityFocalLoss"), "softmax logits"),
    ("retina", "kd_cls", dict(type="KDKLDivLoss"), "sigmoid logits"),
    ("retina", "kd_reg", dict(type="KDRotatedGDLoss"), "horizontal boxes"),
])
def test_kd_loss_that_does_not_fit_is_refused_with_the_key(family, key, loss, says):
    pair = ((tiny_faster_rcnn(), tiny_faster_rcnn(width=16)) if family == "rcnn"
            else (tiny_retinanet(), tiny_retinanet(width=16)))
    with pytest.raises(ValueError, match=rf"distill_cfg\.{key}: {loss['type']}.*{says}"):
        build(distiller_cfg(*pair, **{key: loss}))


def test_kl_reduction_sums_over_rois():
    from ds2d2_mm.models.losses import KDKLDivLoss

    s, t = torch.randn(7, 4), torch.randn(7, 4)
    summed = KDKLDivLoss(temperature=3.0, reduction="sum")(s, t)
    mean = KDKLDivLoss(temperature=3.0, reduction="mean")(s, t)
    assert summed.item() == pytest.approx(7 * mean.item(), rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        KDKLDivLoss(reduction="none")
