"""FGD: Focal and Global Knowledge Distillation for Detectors (a comparison method)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from .stream_loss import (
    StreamLoss,
    align_connector_cfg,
    check_levels,
    chosen_levels,
    left_out,
    per_level,
)

#: Boxes whose cells are compared at once when FGD's masks are built (bounds the memory).
_BOX_CHUNK = 256


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


class GcBlock(StreamLoss):
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

    weight_keys = ("alpha_fgd", "beta_fgd", "gamma_fgd", "lambda_fgd")

    def __init__(self, student_channels: int | Sequence[int],
                 teacher_channels: int | Sequence[int], num_levels: int, temp: float = 0.5,
                 alpha_fgd: float = 0.001, beta_fgd: float = 0.0005, gamma_fgd: float = 0.0005,
                 lambda_fgd: float = 0.000005, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        if not (math.isfinite(temp) and temp > 0):
            raise ValueError(f"FGDLoss: temp must be finite and > 0, got {temp!r}")
        self._connector = align_connector_cfg(student_channels, teacher_channels, num_levels,
                                              bias=True)
        self.num_levels = num_levels
        self.levels = chosen_levels(levels, num_levels, "FGDLoss")
        t_ch = per_level(teacher_channels, num_levels, "teacher")
        self.gc_student = nn.ModuleList(GcBlock(t_ch[i]) for i in self.levels)
        self.gc_teacher = nn.ModuleList(GcBlock(t_ch[i]) for i in self.levels)
        self.temp = temp
        self.alpha_fgd, self.beta_fgd = alpha_fgd, beta_fgd
        self.gamma_fgd, self.lambda_fgd = gamma_fgd, lambda_fgd

    def forward(self, student_maps: Sequence[Tensor], teacher_maps: Sequence[Tensor],
                boxes: Sequence[Tensor], img_shape: tuple[int, int]) -> dict[str, Tensor]:
        """FGD terms.

        Args:
            student_maps: Connected (aligned) student levels, each (N, C_t, H_l, W_l).
            teacher_maps: Teacher levels, each (N, C_t, H_l, W_l) (no gradient needed).
            boxes: Per image ground-truth boxes in input pixels, (k_i, 4) x1y1x2y2 or (k_i, 5).
            img_shape: (H, W) of the batch input.

        Returns:
            ``loss_fgd_fg``, ``loss_fgd_bg``, ``loss_fgd_mask``, ``loss_fgd_global``.
        """
        check_levels("FGDLoss", student_maps, teacher_maps, self.num_levels)
        fg_sum = left_out(student_maps, self.levels)
        bg_sum = mask_sum = glob_sum = torch.zeros_like(fg_sum)
        for j, i in enumerate(self.levels):
            s, t = student_maps[i].float(), teacher_maps[i].detach().float()
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

    def connector_cfg(self) -> dict:
        """FGD's align layer: the identity when the channels match, else a 1x1 convolution with
        bias per level."""
        return dict(self._connector)
