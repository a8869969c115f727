"""How much of the original SAM3 trunk a fine-tuned trunk keeps: cosine similarity and CKA.

For each held-out image both trunks produce an (C, h, w) map. Two numbers per image:

- cosine: cosine similarity of the two maps flattened to vectors;
- linear CKA (Kornfeld et al. 2019) of the two token sets, the h*w locations as examples and the
  C channels as features: ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` with centred
  ``X, Y`` (h*w, C). Invariant to rotations and isotropic scaling of the features, so it measures
  whether the representation is kept, not only the exact values.

The trunk passes when the mean of each over the images is at least the threshold (0.95).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ...models.backbones.sam3_trunk import run_trunk

__all__ = ["RetentionReport", "compare_trunks", "linear_cka", "per_image_cosine"]

#: Default pass mark for the mean cosine similarity and the mean linear CKA.
DEFAULT_THRESHOLD = 0.95


def per_image_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of (N, C, H, W) maps per image, flattened: returns (N,)."""
    return torch.nn.functional.cosine_similarity(
        a.flatten(1).double(), b.flatten(1).double(), dim=1
    )


def linear_cka(x: Tensor, y: Tensor) -> Tensor:
    """Linear CKA of two representations of the same examples: (n, p), (n, q) -> scalar."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = (y.T @ x).square().sum()
    return cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp_min(torch.finfo(torch.float64).tiny)


def per_image_cka(a: Tensor, b: Tensor) -> Tensor:
    """Linear CKA per image of (N, C, H, W) maps, locations as examples: returns (N,)."""
    tokens_a = a.flatten(2).transpose(1, 2)  # (N, H*W, C)
    tokens_b = b.flatten(2).transpose(1, 2)
    return torch.stack([linear_cka(x, y) for x, y in zip(tokens_a, tokens_b)])


@dataclass
class RetentionReport:
    """Per-image similarities of a fine-tuned trunk to the original, and the verdict."""

    names: list[str] = field(default_factory=list)
    cosine: list[float] = field(default_factory=list)
    cka: list[float] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD

    @property
    def mean_cosine(self) -> float:
        """Mean per-image cosine similarity."""
        return sum(self.cosine) / max(len(self.cosine), 1)

    @property
    def mean_cka(self) -> float:
        """Mean per-image linear CKA."""
        return sum(self.cka) / max(len(self.cka), 1)

    @property
    def passed(self) -> bool:
        """Whether both means reach the threshold."""
        return bool(self.names) and min(self.mean_cosine, self.mean_cka) >= self.threshold

    def table(self) -> str:
        """A text table: one row per image, then mean and min, then PASS / FAIL."""
        width = max([len("image"), *(len(n) for n in self.names)])
        lines = [f"{'image':<{width}}  cosine  lin.CKA", "-" * (width + 17)]
        lines += [
            f"{n:<{width}}  {c:6.4f}  {k:7.4f}"
            for n, c, k in zip(self.names, self.cosine, self.cka)
        ]
        lines.append("-" * (width + 17))
        if self.names:
            lines.append(f"{'mean':<{width}}  {self.mean_cosine:6.4f}  {self.mean_cka:7.4f}")
            lines.append(f"{'min':<{width}}  {min(self.cosine):6.4f}  {min(self.cka):7.4f}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: mean cosine {self.mean_cosine:.4f} and mean linear CKA "
            f"{self.mean_cka:.4f} vs threshold {self.threshold} over {len(self.names)} images"
        )
        return "\n".join(lines)


@torch.no_grad()
def compare_trunks(
    finetuned: nn.Module,
    original: nn.Module,
    images: Iterable[tuple[str, Tensor]],
    threshold: float = DEFAULT_THRESHOLD,
) -> RetentionReport:
    """Run both trunks (in eval mode) on ``images`` and collect the similarities.

    Args:
        finetuned, original: ``sam3.model.vitdet.ViT`` trunks of the same architecture.
        images: ``(name, (1, 3, H, W) normalised image)`` pairs, ``H, W <= img_size``.
        threshold: Pass mark for the mean cosine and mean CKA.
    """
    report = RetentionReport(threshold=threshold)
    modes: Sequence[bool] = [finetuned.training, original.training]
    finetuned.eval()
    original.eval()
    try:
        for name, image in images:
            a = run_trunk(finetuned, image).float()
            b = run_trunk(original, image).float()
            report.names.append(name)
            report.cosine += per_image_cosine(a, b).tolist()
            report.cka += per_image_cka(a, b).tolist()
    finally:
        finetuned.train(modes[0])
        original.train(modes[1])
    return report
