"""Export a fine-tuned SAM3 trunk back into a ``sam3.pt``-compatible checkpoint.

    ds2d2-export-sam3-trunk work_dirs/retina_sam3_dior/epoch_24.pth \\
        --base checkpoints/sam3.pt --out checkpoints/sam3_dior.pt

With ``--base`` (recommended) the output is the original checkpoint with its trunk weights
replaced: the same keys, shapes, dtypes and layout (``{"model": ...}`` or flat), so SAM3's own
builder (``build_sam3_image_model(checkpoint_path=...)``) and its prompted segmentation load it
unchanged. Without ``--base`` only the trunk is written, under the key prefix
``detector.backbone.vision_backbone.trunk.``, its RoPE tables left out (SAM3 recomputes them).
"""

from __future__ import annotations

from ...models.backbones.sam3_trunk import (
    SAM3_TRUNK_PREFIX,
    read_sam3_file,
    trunk_state_from_training_checkpoint,
    trunk_to_sam3_state,
)
from ...utils.io import atomic_torch_save

__all__ = ["export_trunk"]


def export_trunk(
    checkpoint: str, out: str, base: str | None = None, prefix: str | None = None
) -> int:
    """Write the trunk of training checkpoint ``checkpoint`` as a SAM3 checkpoint at ``out``.

    Returns:
        The number of trunk tensors written.

    Raises:
        CheckpointError: a missing or unreadable ``checkpoint`` or ``base``, no trunk in
            ``checkpoint``, or a trunk that does not match ``base``'s.
    """
    trunk, _ = trunk_state_from_training_checkpoint(checkpoint, prefix)
    if base is None:
        payload: dict = trunk_to_sam3_state(trunk)
        written = len(payload)
    else:
        raw = read_sam3_file(base, missing=f"base SAM3 checkpoint not found: {base!r}")
        inner_key = next((k for k in ("model", "state_dict") if isinstance(raw.get(k), dict)), None)
        inner = raw[inner_key] if inner_key else raw
        merged = trunk_to_sam3_state(trunk, base=inner)
        payload = {**raw, inner_key: merged} if inner_key else merged
        written = sum(1 for k in merged if k.startswith(SAM3_TRUNK_PREFIX) and "freqs_cis" not in k)
    atomic_torch_save(payload, out)
    return written
