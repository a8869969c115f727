"""Helpers of the SAM3 output-retention and export tests: tiny full SAM3 image models, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

#: Std of the box head's last layer in the test models. sam3 zero-initialises it (DETR-style),
#: which makes a random model's boxes the same for every image; a trained SAM3's depend on it.
BOX_HEAD_STD = 3.0
#: Noise added to every ViT block weight, in units of that weight's std: enough to move the
#: tiny model's boxes (text-prompt AP about 0.78 at 3x, measured), far from a fine-tuning step.
TRUNK_NOISE = 5.0


def tiny_sam3(seed: int = 0, adapter_hidden: int | None = None):
    """A tiny ``Sam3Image`` (eval mode) whose boxes depend on the image; optionally with an
    identity spectral adapter of ``adapter_hidden`` channels."""
    from ds2d2_mm.models.detectors.sam3_prompted import build_sam3_image_model
    from ds2d2_mm.models.detectors.sam3_prompted.policy import insert_spectral_adapter

    torch.manual_seed(seed)
    model = build_sam3_image_model("tiny")
    with torch.no_grad():
        model.transformer.decoder.bbox_embed.layers[-1].weight.normal_(0, BOX_HEAD_STD)
    if adapter_hidden:
        insert_spectral_adapter(model, hidden_channels=adapter_hidden)
    return model.eval()


def copy_of(model, adapter_hidden: int | None = None):
    """A second tiny model with ``model``'s weights; with ``adapter_hidden`` an identity adapter
    is inserted (``model`` has none)."""
    other = tiny_sam3(seed=123, adapter_hidden=adapter_hidden)
    result = other.load_state_dict(model.state_dict(), strict=not adapter_hidden)
    assert all(".spectral_adapter." in k for k in result.missing_keys), result
    return other


def perturb_trunk(model, scale: float = TRUNK_NOISE, seed: int = 3) -> None:
    """Add noise of ``scale`` x each weight's std to every block of the ViT trunk, in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.backbone.vision_backbone.trunk.blocks:
            for param in block.parameters():
                spread = param.std() if param.numel() > 1 else torch.tensor(1.0)
                param.add_(scale * spread * torch.randn(param.shape, generator=generator))


def perturb_adapter(model, seed: int = 5) -> None:
    """Make the model's spectral adapter clearly non-identity (random weights, gamma 0.5)."""
    generator = torch.Generator().manual_seed(seed)
    adapter = model.backbone.vision_backbone.spectral_adapter
    with torch.no_grad():
        for param in adapter.parameters():
            param.add_(0.2 * torch.randn(param.shape, generator=generator))
        adapter.gamma.fill_(0.5)


def write_sam3_pt(model, path: Path, extra: dict | None = None) -> None:
    """``model`` (without adapter) as SAM3's released ``sam3.pt`` lays it out."""
    from ds2d2_mm.apis.sam3.export_full import image_state_to_sam3

    torch.save({"model": {**image_state_to_sam3(model.state_dict()), **(extra or {})}}, path)


def write_training_checkpoint(model, path: Path) -> None:
    """``model`` as an mmengine checkpoint of ``Sam3PromptedDetector`` (its SAM3 under sam3.)."""
    state = {f"sam3.{k}": v for k, v in model.state_dict().items()}
    state["data_preprocessor.mean"] = torch.zeros(3, 1, 1)
    torch.save({"meta": {"epoch": 1}, "state_dict": state}, path)


def write_images(folder: Path, count: int = 3) -> list[str]:
    """``count`` small random RGB PNGs (90 x 120) in ``folder``; returns their names."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        names.append(f"img{i}.png")
        cv2.imwrite(str(folder / names[-1]), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    return names


def write_config(path: Path, checkpoint: Path) -> None:
    """A minimal ``Sam3PromptedDetector`` config: the fields the retention tool reads."""
    path.write_text(
        f"model = dict(type='Sam3PromptedDetector', arch='tiny', checkpoint={str(checkpoint)!r}, "
        f"adapter_cfg=dict(hidden_channels=8))\n"
    )


def write_prompts(path: Path) -> None:
    """Two text prompts, box prompts on two images and point prompts on one."""
    path.write_text(json.dumps({
        "text": ["ship", "airplane"],
        "boxes": {"img0.png": [[10, 10, 50, 40]], "img1.png": [[30, 20, 100, 80]]},
        "points": {"img0.png": [[[30, 25]]]},
    }))
