"""FitNet, FGD, PKD and MGD explicit streams: each loss recomputed here from its formula, and one
distillation step through the real distiller with each as ``distill_cfg.explicit``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ds2d2_testlib import build, connector_of, distiller_cfg, make_batch, tiny_retinanet

RTOL = dict(rtol=1e-4, atol=1e-6)
IMG = (64, 48)  # (H, W) of the batch input
GRIDS = [(8, 6), (4, 3)]  # two levels: strides 8 and 16


def feats(channels: int, seed: int, n: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, channels, h, w, generator=g) for h, w in GRIDS]


BOXES = [torch.tensor([[3.0, 5.0, 20.0, 30.0], [10.0, 12.0, 44.0, 60.0], [30.0, 2.0, 33.0, 9.0]]),
         torch.tensor([[0.0, 0.0, 48.0, 17.0]])]


# -- plain reference pieces (no code shared with ds2d2_mm) -----------------------------------------
def conv1x1(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    w = conv.weight.detach()[:, :, 0, 0]
    out = torch.einsum("oc,nchw->nohw", w, x)
    return out if conv.bias is None else out + conv.bias.detach()[None, :, None, None]


def ref_fgd_masks(boxes, img_shape, grid):
    """Loop over images, cells and boxes: the largest 1/area of the boxes covering each cell."""
    h, w = grid
    img_h, img_w = img_shape
    fg = torch.zeros(len(boxes), h, w)
    bg = torch.zeros(len(boxes), h, w)
    for i, img_boxes in enumerate(boxes):
        spans = []
        for x1, y1, x2, y2 in img_boxes.tolist():
            c0, c1 = math.floor(x1 / img_w * w), math.ceil(x2 / img_w * w)
            r0, r1 = math.floor(y1 / img_h * h), math.ceil(y2 / img_h * h)
            spans.append((r0, r1, c0, c1, 1.0 / ((r1 + 1 - r0) * (c1 + 1 - c0))))
        for r in range(h):
            for c in range(w):
                for r0, r1, c0, c1, value in spans:
                    if r0 <= r <= r1 and c0 <= c <= c1:
                        fg[i, r, c] = max(fg[i, r, c].item(), value)
        empty = [(r, c) for r in range(h) for c in range(w) if fg[i, r, c] == 0]
        for r, c in empty:
            bg[i, r, c] = 1.0 / len(empty)
    return fg, bg


def ref_attention(x, temp):
    n, c, h, w = x.shape
    sp = torch.zeros(n, h, w)
    ch = torch.zeros(n, c)
    for i in range(n):
        a = x[i].abs().mean(0).flatten() / temp
        sp[i] = (h * w * torch.exp(a) / torch.exp(a).sum()).reshape(h, w)
        b = x[i].abs().mean((1, 2)) / temp
        ch[i] = c * torch.exp(b) / torch.exp(b).sum()
    return sp, ch


def ref_gcblock(x, gc):
    n, c, h, w = x.shape
    logits = conv1x1(x, gc.conv_mask).reshape(n, h * w)
    attn = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    context = (x.reshape(n, c, h * w) * attn[:, None]).sum(-1)[:, :, None, None]
    conv_a, norm, _, conv_b = gc.channel_add
    y = conv1x1(context, conv_a)
    mu = y.mean(dim=(1, 2, 3), keepdim=True)
    var = y.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    y = (y - mu) / torch.sqrt(var + norm.eps) * norm.weight.detach() + norm.bias.detach()
    return x + conv1x1(y.clamp_min(0), conv_b)


# -- FitNet ----------------------------------------------------------------------------------------
def test_fitnet_matches_formula_and_vanishes_with_identity_regressor():
    from ds2d2_mm.models.losses import FitNetLoss

    loss = FitNetLoss(student_channels=8, teacher_channels=16, num_levels=2, loss_weight=0.7)
    adapter = connector_of(loss, 8, 16, 2)
    s, t = feats(8, 0), feats(16, 1)
    out = loss(adapter(s), t, BOXES, IMG)
    ref = sum(((conv1x1(x, conv) - y) ** 2).sum() / y.numel()
              for x, y, conv in zip(s, t, adapter.convs, strict=True))
    torch.testing.assert_close(out["loss_fitnet"], 0.7 * ref, **RTOL)

    same = FitNetLoss(student_channels=8, teacher_channels=8, num_levels=2)
    same_adapter = connector_of(same, 8, 8, 2)
    assert len(same_adapter.convs) == 2  # the regressors exist also when the channels match
    for conv in same_adapter.convs:
        torch.nn.init.zeros_(conv.bias)
        conv.weight.data.copy_(torch.eye(8)[:, :, None, None])
    t8 = feats(8, 2)
    out = same(same_adapter(t8), t8, BOXES, IMG)["loss_fitnet"]
    assert out.item() == pytest.approx(0, abs=1e-12)


# -- FGD -------------------------------------------------------------------------------------------
def test_fgd_masks_follow_the_official_area_rule_cell_by_cell():
    from ds2d2_mm.models.losses.fgd import fgd_masks

    for grid in GRIDS:
        fg, bg = fgd_masks(BOXES, IMG, grid)
        ref_fg, ref_bg = ref_fgd_masks(BOXES, IMG, grid)
        torch.testing.assert_close(fg, ref_fg, **RTOL)
        torch.testing.assert_close(bg, ref_bg, **RTOL)
    # the second image's box spans the whole width: only the rows below it are background
    fg, bg = fgd_masks(BOXES, IMG, (8, 6))
    assert (fg[1, :3] > 0).all() and (bg[1, 4:] > 0).all()
    assert bg[1].sum().item() == pytest.approx(1)


def test_fgd_oriented_boxes_take_their_enclosing_rectangle():
    from ds2d2_mm.models.losses.fgd import fgd_masks

    rotated = [torch.tensor([[24.0, 32.0, 20.0, 8.0, math.pi / 2]])]  # 8 wide, 20 tall on screen
    horizontal = [torch.tensor([[20.0, 22.0, 28.0, 42.0]])]
    for a, b in zip(fgd_masks(rotated, IMG, (8, 6)), fgd_masks(horizontal, IMG, (8, 6)),
                    strict=True):
        torch.testing.assert_close(a, b, **RTOL)


def fgd_reference(loss, s, t, boxes, img_shape):
    terms = dict(fg=0.0, bg=0.0, mask=0.0, glob=0.0)
    for j, (x, y) in enumerate(zip(s, t, strict=True)):
        n, c, h, w = y.shape
        fg, bg = ref_fgd_masks(boxes, img_shape, (h, w))
        sp_t, ch_t = ref_attention(y, loss.temp)
        sp_s, ch_s = ref_attention(x, loss.temp)
        for i in range(n):
            weight = sp_t[i][None] * ch_t[i][:, None, None]
            sq = (x[i] - y[i]) ** 2
            terms["fg"] += (weight * fg[i][None] * sq).sum() / n
            terms["bg"] += (weight * bg[i][None] * sq).sum() / n
            terms["mask"] += ((ch_s[i] - ch_t[i]).abs().sum()
                              + (sp_s[i] - sp_t[i]).abs().sum()) / n
        diff = ref_gcblock(x, loss.gc_student[j]) - ref_gcblock(y, loss.gc_teacher[j])
        terms["glob"] += (diff ** 2).sum() / n
    return dict(loss_fgd_fg=loss.alpha_fgd * terms["fg"], loss_fgd_bg=loss.beta_fgd * terms["bg"],
                loss_fgd_mask=loss.gamma_fgd * terms["mask"],
                loss_fgd_global=loss.lambda_fgd * terms["glob"])


def randomise(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_fgd_matches_formula():
    from ds2d2_mm.models.losses import FGDLoss

    loss = FGDLoss(student_channels=8, teacher_channels=16, num_levels=2)
    assert (loss.temp, loss.alpha_fgd, loss.beta_fgd, loss.gamma_fgd, loss.lambda_fgd) == (
        0.5, 0.001, 0.0005, 0.0005, 0.000005)  # RetinaNet, yzd-v/FGD config
    randomise(loss.gc_student, 3)  # the last conv starts at zero: exercise the whole block
    randomise(loss.gc_teacher, 4)
    s, t = feats(8, 0), feats(16, 1)
    with torch.no_grad():
        adapted = connector_of(loss, 8, 16, 2)(s)
        out = loss(adapted, t, BOXES, IMG)
    ref = fgd_reference(loss, adapted, t, BOXES, IMG)
    assert set(out) == set(ref)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key].float(), **RTOL)
        assert out[key].dtype == torch.float32 and out[key].item() > 0
    # mutation: a background mask normalised by its mean instead of its sum would differ
    _, bg = ref_fgd_masks(BOXES, IMG, GRIDS[0])
    assert not torch.allclose(bg, (bg > 0).float() / (bg > 0).float().mean())


def test_fgd_focal_and_attention_terms_vanish_when_student_equals_teacher():
    from ds2d2_mm.models.losses import FGDLoss

    loss = FGDLoss(student_channels=16, teacher_channels=16, num_levels=2)
    assert not list(connector_of(loss, 16, 16, 2).parameters())  # equal channels: identity
    t = feats(16, 5)
    out = loss(connector_of(loss, 16, 16, 2)(t), t, BOXES, IMG)
    for key in ("loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask"):
        assert out[key].item() == 0, key
    # both GcBlocks start as the identity, so the global term is zero at initialisation too
    assert out["loss_fgd_global"].item() == pytest.approx(0, abs=1e-12)


# -- PKD -------------------------------------------------------------------------------------------
def ref_standardise(x, per_image=False):
    out = torch.empty_like(x)
    n, c = x.shape[:2]
    for k in range(c):
        groups = [(i, k) for i in range(n)] if per_image else [(slice(None), k)]
        for idx in groups:
            v = x[idx]
            m = v.sum() / v.numel()
            sd = torch.sqrt(((v - m) ** 2).sum() / (v.numel() - 1))
            out[idx] = (v - m) / (sd + 1e-6)
    return out


def test_pkd_matches_formula():
    from ds2d2_mm.models.losses import PKDLoss

    loss = PKDLoss(student_channels=16, teacher_channels=16, num_levels=2, levels=None)
    assert loss.loss_weight == 10  # RetinaNet, MMRazor pkd_fpn_retina_x101_retina_r50_2x_coco.py
    s, t = feats(16, 0), feats(16, 1)
    s = [3 * x + 1 for x in s]  # magnitudes differ: PKD ignores them
    out = loss(connector_of(loss, 16, 16, 2)(s), t, BOXES, IMG)["loss_pkd"]
    ref = sum(((ref_standardise(x) - ref_standardise(y)) ** 2).sum() / y.numel() / 2
              for x, y in zip(s, t, strict=True))
    torch.testing.assert_close(out, 10 * ref, **RTOL)
    # the per-channel Pearson form: mean over channels of (1 - r) up to the (M-1)/M factor
    x, y = s[0].transpose(0, 1).flatten(1), t[0].transpose(0, 1).flatten(1)
    r = torch.stack([torch.corrcoef(torch.stack([a, b]))[0, 1] for a, b in zip(x, y, strict=True)])
    m = x.shape[1]
    level0 = ((ref_standardise(s[0]) - ref_standardise(t[0])) ** 2).sum() / t[0].numel() / 2
    torch.testing.assert_close(level0, ((1 - r) * (m - 1) / m).mean(), rtol=1e-3, atol=1e-5)
    # mutation: standardising per image is another loss
    per_image = PKDLoss(16, 16, 2, levels=None, per_image=True)(s, t, BOXES, IMG)["loss_pkd"]
    ref_pi = sum(((ref_standardise(x, True) - ref_standardise(y, True)) ** 2).sum() / y.numel() / 2
                 for x, y in zip(s, t, strict=True))
    torch.testing.assert_close(per_image, 10 * ref_pi, **RTOL)
    assert not torch.allclose(per_image, out, rtol=1e-3)


def test_pkd_vanishes_when_student_equals_teacher_up_to_scale_and_levels_are_published():
    from ds2d2_mm.models.losses import PKDLoss

    loss = PKDLoss(student_channels=16, teacher_channels=16, num_levels=5)
    assert loss.levels == (0, 1, 2, 3)  # the published configs distil the first four levels
    t = feats(16, 7)
    same = PKDLoss(16, 16, 2, levels=None)
    assert same([2 * x + 5 for x in t], t, BOXES, IMG)["loss_pkd"].item() == pytest.approx(
        0, abs=1e-8)
    with pytest.raises(ValueError, match="levels"):
        PKDLoss(16, 16, 3)


# -- MGD -------------------------------------------------------------------------------------------
def test_mgd_matches_formula_with_the_same_random_mask():
    from ds2d2_mm.models.losses import MGDLoss

    loss = MGDLoss(student_channels=8, teacher_channels=16, num_levels=2)
    assert (loss.alpha_mgd, loss.lambda_mgd) == (0.00002, 0.65)  # RetinaNet, yzd-v/MGD config
    s, t = feats(8, 0), feats(16, 1)
    with torch.no_grad():
        adapted = connector_of(loss, 8, 16, 2)(s)
        torch.manual_seed(123)
        out = loss(adapted, t, BOXES, IMG)["loss_mgd"]
    torch.manual_seed(123)
    ref = 0.0
    for j, (x, y) in enumerate(zip(adapted, t, strict=True)):
        n, _, h, w = y.shape
        u = torch.rand((n, 1, h, w))
        keep = torch.ones(n, 1, h, w)
        for idx in (u > 1 - 0.65).nonzero().tolist():  # position dropped
            keep[tuple(idx)] = 0.0
        conv_a, _, conv_b = loss.generation[j]
        hidden = F.conv2d(x * keep, conv_a.weight, conv_a.bias, padding=1).clamp_min(0)
        new = F.conv2d(hidden, conv_b.weight, conv_b.bias, padding=1)
        ref = ref + ((new - y) ** 2).sum() / n
    torch.testing.assert_close(out, 0.00002 * ref.detach(), **RTOL)
    # the masks drop about lambda_mgd of the positions
    torch.manual_seed(0)
    big = loss.draw_masks([torch.zeros(4, 1, 64, 64)] * 2)
    assert abs(1 - big[0].mean().item() - 0.65) < 0.02
    # explicit masks are used as given: nothing dropped gives another value
    with torch.no_grad():
        kept = loss(adapted, t, BOXES, IMG, masks=[torch.ones(2, 1, h, w) for h, w in GRIDS])
    assert not torch.allclose(kept["loss_mgd"], out)


# -- through the distiller -------------------------------------------------------------------------
METHODS = {
    "FitNetLoss": {"loss_fitnet"},
    "FGDLoss": {"loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask", "loss_fgd_global"},
    "PKDLoss": {"loss_pkd"},
    "MGDLoss": {"loss_mgd"},
}


def test_distill_cfg_with_a_feature_kd_method_passes_validation():
    from ds2d2_mm.models.distillers.distill_cfg import merge_distill_cfg
    from ds2d2_mm.utils.errors import ConfigError

    cfg = merge_distill_cfg(dict(explicit=dict(type="FGDLoss", temp=0.5, alpha_fgd=0.001,
                                               beta_fgd=0.0005, gamma_fgd=0.0005,
                                               lambda_fgd=0.000005),
                                 amplifiers=dict(full=0, high=0)))
    assert cfg["explicit"]["type"] == "FGDLoss" and "lambda_low" not in cfg["explicit"]
    with pytest.raises(ConfigError, match="alpha_mgd"):
        merge_distill_cfg(dict(explicit=dict(type="MGDLoss", alpha_mgd=-1.0)))
    with pytest.raises(ConfigError, match="unknown keys"):
        merge_distill_cfg(dict(explicit=dict(type="PKDLoss", lambda_low=1.0)))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_one_distillation_step_with_each_method(method):
    cfg = distiller_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=16, fpn=32),
                        explicit=dict(type=method), amplifiers=dict(full=0, high=0))
    model = build(cfg)
    model.train()
    assert type(model.explicit).__name__ == method and not list(model.amplifiers)
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert METHODS[method] <= set(losses)
    assert not any(k.startswith(("loss_exp_", "loss_imp_")) for k in losses)
    for key in METHODS[method]:
        assert losses[key].dtype == torch.float32 and torch.isfinite(losses[key]), key
    total = sum(v if torch.is_tensor(v) else sum(v) for k, v in losses.items() if "loss" in k)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in model.named_parameters() if n.startswith("student.backbone"))
    # every parameter of the method (its align convs in the connector, GcBlocks, generation
    # block) takes part
    method_params = {**{f"connector.{n}": p for n, p in model.connector.named_parameters()},
                     **dict(model.explicit.named_parameters())}
    assert method_params and all(p.grad is not None for p in method_params.values()), [
        n for n, p in method_params.items() if p.grad is None]
    assert any(p.grad.abs().sum() > 0 for n, p in method_params.items()
               if n.startswith("connector."))
    for part in ("gc_student", "gc_teacher", "generation"):
        grads = [p.grad for n, p in method_params.items() if n.startswith(part)]
        assert not grads or any(g.abs().sum() > 0 for g in grads), part
