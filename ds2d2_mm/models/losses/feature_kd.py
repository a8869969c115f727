"""Feature-level comparison distillation methods as drop-in explicit streams.

Each class here can replace :class:`~ds2d2_mm.models.losses.DISWLoss` as ``distill_cfg.explicit``
(turn the amplifiers off, ``amplifiers=dict(full=0, high=0)``, to run the method alone): it takes
the distiller's ``student_channels``, ``teacher_channels`` and ``num_levels``, has an ``adapter``
mapping the student's FPN levels to the teacher's channels, and its ``forward(adapted, teacher,
boxes, img_shape)`` returns fp32 ``loss_<method>*`` scalars summed over the distilled levels.

* :class:`FitNetLoss` - Romero et al., ICLR 2015, as used on detector FPNs.
* :class:`FGDLoss` - Yang et al., CVPR 2022 (official code: yzd-v/FGD).
* :class:`PKDLoss` - Cao et al., NeurIPS 2022 (official code: MMRazor ``pkd_loss.py``).
* :class:`MGDLoss` - Yang et al., ECCV 2022 (official code: yzd-v/MGD).

The published configs hook one loss module per FPN level, so every learnable part of a method
(align conv, GcBlock, generation block) is per level here too. ``levels`` picks the distilled
levels (``None``: all); the published Faster R-CNN configs distil P2-P5 only, ``levels=(0, 1, 2,
3)``. The adapter outputs of levels left out still enter the graph with a zero weight, so that
their parameters take part in every backward (DDP without ``find_unused_parameters``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..connectors.feature_adapter import FeatureAdapter

#: Boxes whose cells are compared at once when FGD's masks are built (bounds the memory).
_BOX_CHUNK = 256


def _per_level(channels: int | Sequence[int], num_levels: int, what: str) -> list[int]:
    out = [channels] * num_levels if isinstance(channels, int) else [int(c) for c in channels]
    if len(out) != num_levels:
        raise ValueError(f"{what}: {len(out)} channel entries for {num_levels} levels")
    return out


def _chosen_levels(levels: Sequence[int] | None, num_levels: int, owner: str) -> tuple[int, ...]:
    """The distilled level indices (all when ``levels`` is None), checked."""
    chosen = tuple(range(num_levels)) if levels is None else tuple(int(i) for i in levels)
    if not chosen or len(set(chosen)) != len(chosen) or any(
            not 0 <= i < num_levels for i in chosen):
        raise ValueError(f"{owner}: levels={levels!r} must be distinct indices of the "
                         f"{num_levels} FPN levels (0 to {num_levels - 1}); set "
                         "distill_cfg.explicit.levels")
    return chosen


def _align_adapter(student_channels: int | Sequence[int], teacher_channels: int | Sequence[int],
                   num_levels: int, bias: bool) -> FeatureAdapter:
    """Identity when the channels match on every level, else one 1x1 conv per level."""
    same = (_per_level(student_channels, num_levels, "student")
            == _per_level(teacher_channels, num_levels, "teacher"))
    return FeatureAdapter(student_channels, teacher_channels, num_levels, shared=False,
                          identity=same, bias=bias)


def _check_inputs(owner: str, adapted: Sequence[Tensor], teacher: Sequence[Tensor],
                  num_levels: int) -> None:
    if len(adapted) != num_levels or len(teacher) != num_levels:
        raise ValueError(f"{owner}: got {len(adapted)} student and {len(teacher)} teacher levels "
                         f"for num_levels={num_levels}")
    for i, (s, t) in enumerate(zip(adapted, teacher, strict=True)):
        if s.shape != t.shape:
            raise ValueError(f"{owner}: level {i} student {tuple(s.shape)} and teacher "
                             f"{tuple(t.shape)} differ (the adapter maps channels, the "
                             "distiller resizes)")


def _left_out(adapter: FeatureAdapter, adapted: Sequence[Tensor],
              chosen: tuple[int, ...]) -> Tensor:
    """Zero-weighted sum of the adapter outputs of the levels not distilled (see module doc)."""
    zero = adapted[0].new_zeros((), dtype=torch.float32)
    if adapter.identity:
        return zero
    for i, f in enumerate(adapted):
        if i not in chosen:
            zero = zero + 0.0 * f.float().sum()
    return zero


@MODELS.register_module()
class FitNetLoss(nn.Module):
    """FitNet hint loss on FPN levels (Romero et al., "FitNets: Hints for Thin Deep Nets",
    ICLR 2015), in the form detection KD uses as its baseline.

    ``loss_fitnet = loss_weight * sum_l mean_{n,c,h,w} (r_l(S_l) - T_l)^2`` with ``r_l`` a
    learnable 1x1 convolution (with bias) per level, present even when the channels match (it is
    the method's regressor). The paper's hint loss is ``1/2 ||T - r(S)||^2`` on one layer; for
    detectors the published baseline applies it to every FPN level with a mean reduction.

    Published defaults: RetinaNet and Faster R-CNN FitNet baselines of LutingWang/HEAD
    (``configs/_base_/models/fitnet_retina.py``, ``configs/kd/fitnet_r18_faster.py``): a 1x1
    ``Conv2d`` per level on all 5 FPN levels, ``MSELoss`` with ``weight=1.0``. MMRazor ships
    FitNets only for classification (``configs/distill/mmcls/fitnets``, ``L2Loss``, weight 10).

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        loss_weight: Weight of the summed hint loss (published 1.0).
        levels: Distilled level indices (``None``: all).
    """

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 loss_weight: float = 1.0, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.adapter = FeatureAdapter(student_channels, teacher_channels, num_levels,
                                      shared=False, bias=True)
        self.num_levels = num_levels
        self.levels = _chosen_levels(levels, num_levels, "FitNetLoss")
        self.loss_weight = loss_weight

    def forward(self, adapted: Sequence[Tensor], teacher: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """``loss_fitnet`` from the adapted student levels and the teacher's, each
        (N, C_t, H_l, W_l); ``boxes`` and ``img_shape`` are not used."""
        _check_inputs("FitNetLoss", adapted, teacher, self.num_levels)
        loss = _left_out(self.adapter, adapted, self.levels)
        for i in self.levels:
            loss = loss + F.mse_loss(adapted[i].float(), teacher[i].detach().float())
        return dict(loss_fitnet=self.loss_weight * loss)


# -- FGD ----------------------------------------------------------------------------------------
def _horizontal(boxes: Tensor) -> Tensor:
    """(k, 4) x1y1x2y2 boxes; (k, 5) cx, cy, w, h, angle boxes become their enclosing
    axis-aligned rectangle."""
    if boxes.dim() != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(f"FGDLoss: boxes must be (k, 4) or (k, 5), got {tuple(boxes.shape)}")
    if boxes.shape[1] == 4:
        return boxes
    cx, cy, w, h, angle = boxes.unbind(1)
    cos, sin = torch.cos(angle).abs(), torch.sin(angle).abs()
    half_w = (w * cos + h * sin) / 2
    half_h = (w * sin + h * cos) / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


def fgd_masks(boxes: Sequence[Tensor], img_shape: tuple[int, int], grid: tuple[int, int],
              device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """FGD's foreground and background masks on one level.

    A box (clipped to the image) is scaled to the ``grid``; it covers rows ``floor(y1)`` to
    ``ceil(y2)`` and columns ``floor(x1)`` to ``ceil(x2)`` (inclusive, clipped to the grid) with
    the value ``1 / ((ceil(y2) + 1 - floor(y1)) * (ceil(x2) + 1 - floor(x1)))``; a cell under
    several boxes takes the largest value. The background mask is 1 where no box lies, divided
    by its sum per image (left at 0 where boxes cover the whole map).

    Args:
        boxes: Per image boxes in input pixels, (k_i, 4) x1y1x2y2 or (k_i, 5) oriented.
        img_shape: (H, W) of the batch input.
        grid: (H_l, W_l) of the level.
        device: Where to build the masks (default: the boxes' device).

    Returns:
        ``(fg, bg)``, each (N, H_l, W_l) fp32.
    """
    h, w = grid
    img_h, img_w = float(img_shape[0]), float(img_shape[1])
    device = device if device is not None else (boxes[0].device if boxes else None)
    fg = torch.zeros(len(boxes), h, w, dtype=torch.float32, device=device)
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    for i, img_boxes in enumerate(boxes):
        b = _horizontal(img_boxes.detach().to(device=device, dtype=torch.float32))
        if b.numel() == 0:
            continue
        x1, x2 = (b[:, [0, 2]].clamp(0, img_w) / img_w * w).unbind(1)
        y1, y2 = (b[:, [1, 3]].clamp(0, img_h) / img_h * h).unbind(1)
        wmin, wmax = torch.floor(x1), torch.ceil(x2)
        hmin, hmax = torch.floor(y1), torch.ceil(y2)
        area = 1.0 / (hmax + 1 - hmin) / (wmax + 1 - wmin)
        for lo in range(0, len(b), _BOX_CHUNK):
            sl = slice(lo, lo + _BOX_CHUNK)
            in_rows = (rows >= hmin[sl, None]) & (rows <= hmax[sl, None])  # (k, H_l)
            in_cols = (cols >= wmin[sl, None]) & (cols <= wmax[sl, None])  # (k, W_l)
            cover = in_rows[:, :, None] & in_cols[:, None, :]
            values = torch.where(cover, area[sl, None, None], 0.0).amax(0)
            fg[i] = torch.maximum(fg[i], values)
    bg = (fg == 0).float()
    total = bg.sum(dim=(1, 2), keepdim=True)
    bg = torch.where(total > 0, bg / total.clamp_min(1.0), bg)
    return fg, bg


def fgd_attention(feat: Tensor, temp: float) -> tuple[Tensor, Tensor]:
    """FGD's spatial and channel attention of a (N, C, H, W) map.

    Returns:
        ``H * W * softmax_{hw}(mean_c |F| / temp)`` (N, H, W) and
        ``C * softmax_c(mean_{hw} |F| / temp)`` (N, C).
    """
    n, c, h, w = feat.shape
    value = feat.abs()
    spatial = h * w * F.softmax((value.mean(dim=1) / temp).reshape(n, -1), dim=1)
    channel = c * F.softmax(value.mean(dim=(2, 3)) / temp, dim=1)
    return spatial.reshape(n, h, w), channel


class GcBlock(nn.Module):
    """Global context block of FGD's global loss (GCNet's context modelling and channel-add
    transform): ``x + W2 ReLU(LN(W1 sum_j softmax_j(W_k x_j) x_j))``.

    Initialised as in the official code: the context conv by Kaiming normal (fan in, zero bias),
    the last conv of the transform to zero (the block starts as the identity).

    Args:
        channels: Channels of the map (at least 2; the transform's bottleneck has half).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"GcBlock: needs at least 2 channels, got {channels}")
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=1),
            nn.LayerNorm([channels // 2, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, kernel_size=1))
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add[-1].weight)
        nn.init.zeros_(self.channel_add[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        n, c, h, w = x.shape
        weights = F.softmax(self.conv_mask(x).reshape(n, 1, h * w), dim=2)  # (N, 1, HW)
        context = torch.bmm(x.reshape(n, c, h * w), weights.transpose(1, 2))  # (N, C, 1)
        return x + self.channel_add(context.reshape(n, c, 1, 1))


@MODELS.register_module()
class FGDLoss(nn.Module):
    """Focal and Global Distillation (Yang et al., "Focal and Global Knowledge Distillation for
    Detectors", CVPR 2022), with the normalisations of the official code (yzd-v/FGD,
    ``mmdet/distillation/losses/fgd.py``).

    Per level, with ``S`` the aligned student map, ``T`` the teacher's (N, C, H, W), ``M_fg`` /
    ``M_bg`` the masks of :func:`fgd_masks`, ``A_s^T`` / ``A_c^T`` the teacher's spatial and
    channel attention (:func:`fgd_attention`, temperature ``temp``)::

        fg     = sum M_fg A_s^T A_c^T (S - T)^2 / N
        bg     = sum M_bg A_s^T A_c^T (S - T)^2 / N
        mask   = (sum |A_c^S - A_c^T| + sum |A_s^S - A_s^T|) / N
        global = sum (GC_s(S) - GC_t(T))^2 / N

    with separate :class:`GcBlock` modules for the student and the teacher maps (both trained).
    Returned: ``loss_fgd_fg = alpha_fgd * fg``, ``loss_fgd_bg = beta_fgd * bg``,
    ``loss_fgd_mask = gamma_fgd * mask``, ``loss_fgd_global = lambda_fgd * global``, each summed
    over the levels.

    Published defaults (RetinaNet, ``configs/distillers/fgd/fgd_retina_rx101_64x4d_distill_
    retina_r50_fpn_2x_coco.py``, all 5 levels): ``temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
    gamma_fgd=5e-4, lambda_fgd=5e-6``. Faster R-CNN (``fgd_faster_rcnn_r101_fpn_2x_distill_
    faster_rcnn_r50_fpn_2x_coco.py``): ``alpha_fgd=5e-5, beta_fgd=2.5e-5, gamma_fgd=5e-5,
    lambda_fgd=5e-7``, temp 0.5, ``levels=(0, 1, 2, 3)``.

    Differences from the official code: boxes are scaled by the batch input shape (the grid the
    features are on) where the official code uses each image's unpadded ``img_shape``, and they
    are clipped to the image first; oriented (k, 5) boxes take their enclosing axis-aligned
    rectangle (FGD is defined for horizontal boxes).

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        temp: Attention temperature.
        alpha_fgd: Weight of the foreground term.
        beta_fgd: Weight of the background term.
        gamma_fgd: Weight of the attention (mask) term.
        lambda_fgd: Weight of the global term.
        levels: Distilled level indices (``None``: all).
    """

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int, temp: float = 0.5,
                 alpha_fgd: float = 0.001, beta_fgd: float = 0.0005, gamma_fgd: float = 0.0005,
                 lambda_fgd: float = 0.000005, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        if not (math.isfinite(temp) and temp > 0):
            raise ValueError(f"FGDLoss: temp must be finite and > 0, got {temp!r}")
        self.adapter = _align_adapter(student_channels, teacher_channels, num_levels, bias=True)
        self.num_levels = num_levels
        self.levels = _chosen_levels(levels, num_levels, "FGDLoss")
        t_ch = _per_level(teacher_channels, num_levels, "teacher")
        self.gc_student = nn.ModuleList(GcBlock(t_ch[i]) for i in self.levels)
        self.gc_teacher = nn.ModuleList(GcBlock(t_ch[i]) for i in self.levels)
        self.temp = temp
        self.alpha_fgd, self.beta_fgd = alpha_fgd, beta_fgd
        self.gamma_fgd, self.lambda_fgd = gamma_fgd, lambda_fgd

    def forward(self, adapted: Sequence[Tensor], teacher: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """FGD terms.

        Args:
            adapted: Student levels mapped by :attr:`adapter`, each (N, C_t, H_l, W_l).
            teacher: Teacher levels, each (N, C_t, H_l, W_l) (no gradient needed).
            boxes: Per image ground-truth boxes in input pixels, (k_i, 4) x1y1x2y2 or (k_i, 5).
            img_shape: (H, W) of the batch input.

        Returns:
            ``loss_fgd_fg``, ``loss_fgd_bg``, ``loss_fgd_mask``, ``loss_fgd_global``.
        """
        _check_inputs("FGDLoss", adapted, teacher, self.num_levels)
        fg_sum = _left_out(self.adapter, adapted, self.levels)
        bg_sum = mask_sum = glob_sum = torch.zeros_like(fg_sum)
        for j, i in enumerate(self.levels):
            s, t = adapted[i].float(), teacher[i].detach().float()
            n = t.shape[0]
            fg, bg = fgd_masks(boxes, img_shape, tuple(t.shape[-2:]), device=t.device)
            sp_t, ch_t = fgd_attention(t, self.temp)
            sp_s, ch_s = fgd_attention(s, self.temp)
            gap = sp_t[:, None] * ch_t[:, :, None, None] * (s - t).pow(2)
            fg_sum = fg_sum + (gap * fg[:, None]).sum() / n
            bg_sum = bg_sum + (gap * bg[:, None]).sum() / n
            mask_sum = mask_sum + ((ch_s - ch_t).abs().sum() + (sp_s - sp_t).abs().sum()) / n
            glob = self.gc_student[j](s).float() - self.gc_teacher[j](t).float()
            glob_sum = glob_sum + glob.pow(2).sum() / n
        return dict(loss_fgd_fg=self.alpha_fgd * fg_sum, loss_fgd_bg=self.beta_fgd * bg_sum,
                    loss_fgd_mask=self.gamma_fgd * mask_sum,
                    loss_fgd_global=self.lambda_fgd * glob_sum)


# -- PKD ----------------------------------------------------------------------------------------
def pkd_standardise(feat: Tensor, per_image: bool = False, eps: float = 1e-6) -> Tensor:
    """Each channel of a (N, C, H, W) map to zero mean and unit (unbiased) std,
    ``(x - mean) / (std + eps)``, over the batch and space (official) or over space per image.
    A single-value group (std undefined) gets std 0."""
    dims = (2, 3) if per_image else (0, 2, 3)
    count = math.prod(feat.shape[d] for d in dims)
    mean = feat.mean(dim=dims, keepdim=True)
    std = feat.var(dim=dims, keepdim=True, correction=1 if count > 1 else 0).sqrt()
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(nn.Module):
    """PKD (Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson
    Correlation Coefficient", NeurIPS 2022), as the official implementation (MMRazor
    ``mmrazor/models/losses/pkd_loss.py``) computes it.

    ``loss_pkd = loss_weight * sum_l mean((z(S_l) - z(T_l))^2) / 2`` with ``z`` the per-channel
    standardisation of :func:`pkd_standardise` over the batch and space (N, H, W) together,
    unbiased std plus 1e-6 - equivalent to ``1 - r`` with ``r`` the Pearson correlation of each
    channel. ``per_image=True`` standardises each image's channel over (H, W) instead (not the
    published form).

    Published defaults (MMRazor ``configs/distill/mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_
    coco.py``, RetinaNet-X101 -> R50): ``loss_weight=10`` on the first four FPN levels
    (``levels=(0, 1, 2, 3)``, inherited from the Faster R-CNN config). Faster R-CNN
    (``pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco.py``) and MaskRCNN-Swin -> RetinaNet:
    ``loss_weight=6``, same levels.

    The published method needs equal channels (no adapter): the adapter is then the identity;
    with other channels it is one 1x1 conv per level without bias (an extension).

    Args:
        student_channels: Student FPN channels (int or per level).
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        loss_weight: Weight of the loss (published 10 for RetinaNet, 6 for Faster R-CNN).
        levels: Distilled level indices (``None``: all; published the first four).
        per_image: Standardise per image instead of over the batch.
    """

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 loss_weight: float = 10.0, levels: Sequence[int] | None = (0, 1, 2, 3),
                 per_image: bool = False) -> None:
        super().__init__()
        self.adapter = _align_adapter(student_channels, teacher_channels, num_levels, bias=False)
        self.num_levels = num_levels
        self.levels = _chosen_levels(levels, num_levels, "PKDLoss")
        self.loss_weight = loss_weight
        self.per_image = per_image

    def forward(self, adapted: Sequence[Tensor], teacher: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """``loss_pkd`` from the adapted student levels and the teacher's, each
        (N, C_t, H_l, W_l); ``boxes`` and ``img_shape`` are not used."""
        _check_inputs("PKDLoss", adapted, teacher, self.num_levels)
        loss = _left_out(self.adapter, adapted, self.levels)
        for i in self.levels:
            z_s = pkd_standardise(adapted[i].float(), self.per_image)
            z_t = pkd_standardise(teacher[i].detach().float(), self.per_image)
            loss = loss + F.mse_loss(z_s, z_t) / 2
        return dict(loss_pkd=self.loss_weight * loss)


# -- MGD ----------------------------------------------------------------------------------------
@MODELS.register_module()
class MGDLoss(nn.Module):
    """Masked Generative Distillation (Yang et al., "Masked Generative Distillation", ECCV 2022),
    as the official code computes it (yzd-v/MGD, ``det/mmdet/distillation/losses/mgd.py``).

    Per level: a random mask ``M`` (N, 1, H, W) drops each position with probability
    ``lambda_mgd`` (``u ~ U[0, 1)``, ``M = 0 where u > 1 - lambda_mgd, else 1``), a generation
    block ``G`` (conv3x3-ReLU-conv3x3, with biases, one per level) rebuilds the teacher's map from
    the masked aligned student map, and
    ``loss_mgd = alpha_mgd * sum_l sum (G(S_l * M_l) - T_l)^2 / N``.
    The masks come from torch's global RNG on the features' device (:meth:`draw_masks`; the
    official code draws on the CPU), or are passed to :meth:`forward`.

    Published defaults (yzd-v/MGD ``det/configs/distillers/mgd/retina_rx101_64x4d_distill_retina_
    r50_fpn_2x_coco.py`` and MMRazor ``configs/distill/mmdet/mgd/mgd_fpn_retina_x101_retina_r50_
    2x_coco.py``, all 5 levels): ``alpha_mgd=2e-5, lambda_mgd=0.65``. Faster R-CNN student
    (``cascade_mask_rcnn_rx101_32x4d_distill_faster_rcnn_r50_fpn_2x_coco.py``):
    ``alpha_mgd=5e-7, lambda_mgd=0.45``, ``levels=(0, 1, 2, 3)``.

    Args:
        student_channels: Student FPN channels (int or per level); a 1x1 align conv (with bias)
            per level when they differ from the teacher's (the adapter), else the identity.
        teacher_channels: Teacher FPN channels (int or per level).
        num_levels: Number of FPN levels.
        alpha_mgd: Weight of the loss.
        lambda_mgd: Masked ratio, in [0, 1].
        levels: Distilled level indices (``None``: all).
    """

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int,
                 alpha_mgd: float = 0.00002, lambda_mgd: float = 0.65,
                 levels: Sequence[int] | None = None) -> None:
        super().__init__()
        if not 0.0 <= lambda_mgd <= 1.0:
            raise ValueError(f"MGDLoss: lambda_mgd (masked ratio) must be in [0, 1], "
                             f"got {lambda_mgd!r}")
        self.adapter = _align_adapter(student_channels, teacher_channels, num_levels, bias=True)
        self.num_levels = num_levels
        self.levels = _chosen_levels(levels, num_levels, "MGDLoss")
        t_ch = _per_level(teacher_channels, num_levels, "teacher")
        self.generation = nn.ModuleList(
            nn.Sequential(nn.Conv2d(t_ch[i], t_ch[i], kernel_size=3, padding=1),
                          nn.ReLU(inplace=True),
                          nn.Conv2d(t_ch[i], t_ch[i], kernel_size=3, padding=1))
            for i in self.levels)
        self.alpha_mgd = alpha_mgd
        self.lambda_mgd = lambda_mgd

    def draw_masks(self, teacher: Sequence[Tensor]) -> list[Tensor]:
        """One random keep-mask (N, 1, H_l, W_l) of 0/1 per distilled level, in level order."""
        masks = []
        for i in self.levels:
            n, _, h, w = teacher[i].shape
            u = torch.rand((n, 1, h, w), device=teacher[i].device)
            masks.append(torch.where(u > 1 - self.lambda_mgd, 0.0, 1.0))
        return masks

    def forward(self, adapted: Sequence[Tensor], teacher: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int],
                masks: Sequence[Tensor] | None = None) -> dict[str, Tensor]:
        """``loss_mgd``.

        Args:
            adapted: Student levels mapped by :attr:`adapter`, each (N, C_t, H_l, W_l).
            teacher: Teacher levels, each (N, C_t, H_l, W_l).
            boxes: Not used.
            img_shape: Not used.
            masks: Keep-masks (N, 1, H_l, W_l) per distilled level (default: :meth:`draw_masks`).
        """
        _check_inputs("MGDLoss", adapted, teacher, self.num_levels)
        masks = self.draw_masks(teacher) if masks is None else list(masks)
        if len(masks) != len(self.levels):
            raise ValueError(f"MGDLoss: {len(masks)} masks for {len(self.levels)} levels")
        loss = _left_out(self.adapter, adapted, self.levels)
        for j, i in enumerate(self.levels):
            t = teacher[i].detach().float()
            new = self.generation[j](adapted[i].float() * masks[j].to(t.dtype)).float()
            loss = loss + (new - t).pow(2).sum() / t.shape[0]
        return dict(loss_mgd=self.alpha_mgd * loss)
