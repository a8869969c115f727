"""Every shipped config parses; every model config builds and trains one iteration on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, build, load_config, make_batch, without_pretrained

ALL = sorted(p for p in (REPO / "configs").rglob("*.py")
             if not any(part.startswith("_") for part in p.relative_to(REPO).parts))
#: Oriented-box (mmrotate) configs train in tests/models/distillers/test_rotated.py, in mmrotate's
#: scope; the 4-band demo configs (*_rgbn.py) in tests/tooling/test_rgbn_demo.py, on the rgbn
#: variant's rasters; the cross-modal demo configs (*_paired.py, *_paired_ir.py) in
#: tests/tooling/test_paired_demo.py, on the paired variant's RGB and infrared images.
TRAINABLE = sorted(p for p in ALL if p.parent.name in ("ds2d2", "demo", "ablations")
                   and not p.name.startswith(("rotated_", "oriented_"))
                   and not p.name.endswith(("_rgbn.py", "_paired.py", "_paired_ir.py")))


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


#: The only remote weights a shipped config names: torchvision's ImageNet backbones (fetched
#: once into torch's hub cache, as mmdet's own configs do). Demo, SAM3 and test-size configs name
#: none: they run offline.
IMAGENET = ("torchvision://resnet18", "torchvision://resnet101",
            # the teacher-student gap configs (configs/ds2d2/gap): R34 / R50 students and the
            # ResNeXt-101 teacher, named as mmdet's own configs name them
            "torchvision://resnet34", "torchvision://resnet50", "open-mmlab://resnext101_64x4d")
#: The ImageNet CSPNeXt backbones of RTMDet and RTMDet-R (configs/families), by the file names
#: under which mmdet's and mmrotate's own RTMDet configs name them.
CSPNEXT_IMAGENET = ("cspnext-tiny_imagenet_600e.pth", "cspnext-s_imagenet_600e.pth",
                    "cspnext-l_8xb256-rsb-a1-600e_in1k-6a760974.pth")
OFFLINE = ("demo", "sam3")


def named_imagenet(ref: str, folder: str) -> bool:
    """Whether a remote reference of a config in ``folder`` is an ImageNet backbone."""
    if ref in IMAGENET:
        return True
    return (folder == "families" and ref.startswith("https://")
            and "/cspnext_rsb_pretrain/" in ref and ref.rsplit("/", 1)[-1] in CSPNEXT_IMAGENET)


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_config_parses_and_names_only_imagenet_backbones_remotely(path):
    cfg = load_config(path)
    assert "model" in cfg
    text = cfg.pretty_text
    for prefix in ("torchvision://", "open-mmlab://", "http://", "https://"):
        for at in [i for i in range(len(text)) if text.startswith(prefix, i)]:
            ref = text[at:].split("'")[0]
            assert named_imagenet(ref, path.parent.name) and path.parent.name not in OFFLINE, \
                f"{path}: {ref}"


#: Configs whose model is the full 446M-parameter SAM3 trunk (it needs sam3.pt) are trained here
#: through their tiny-trunk counterparts, which share everything else.
TINY_COUNTERPARTS = {
    "retina_sam3_r18_dior.py": REPO / "configs/sam3/retina_sam3_tiny_r18_distill.py",
    "retina_sam3_hfamp_dior.py": REPO / "configs/sam3/retina_sam3_tiny_hfamp.py",
}


def model_cfg(path: Path) -> dict:
    model = without_pretrained(load_config(path).model.to_dict())
    if model["type"] == "SpectralDistiller":
        model.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    if model["type"] == "HighFrequencyAmplifier":
        model.update(teacher_ckpt=None)
    return model


def num_classes(model: dict) -> int:
    m = model.get("student") or model.get("detector") or model
    head = m.get("bbox_head") or m["roi_head"]["bbox_head"]
    return head["num_classes"]


@pytest.mark.parametrize("path", TRAINABLE, ids=rel)
def test_one_training_iteration(path):
    cfg = model_cfg(TINY_COUNTERPARTS.get(path.name, path))
    model = build(cfg)
    model.train()
    inputs, samples = make_batch(model, batch_size=2, size=64, num_classes=num_classes(cfg))
    losses = model.loss(inputs, samples)
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None for p in model.parameters())


def test_distiller_configs_point_at_their_stage_configs():
    for path in TRAINABLE:
        cfg = load_config(path)
        if cfg.model.type != "SpectralDistiller":
            continue
        for key in ("teacher_config", "amplifier_config"):
            if key == "amplifier_config" and cfg.model.distill_cfg.amplifiers.get("high", 1) == 0:
                continue  # no high-frequency amplifier, no amplifier stage
            assert Path(cfg.model[key]).is_file(), f"{path}: {key} = {cfg.model[key]}"


ABLATION_CHECKS = {
    "fft": lambda m: type(m.explicit.decomposer).__name__ == "FFTSplit",
    "db2": lambda m: type(m.explicit.decomposer).__name__ == "WaveletDWT",
    "sym4": lambda m: type(m.explicit.decomposer).__name__ == "WaveletDWT",
    "no_disw": lambda m: m.explicit.use_disw is False,
    "explicit_only": lambda m: m.amplifiers == [],
    "implicit_only": lambda m: m.explicit.lambda_low == 0 and m.explicit.lambda_high == 0,
    "full_amp_only": lambda m: [a.name for a in m.amplifiers] == ["full"],
}


@pytest.fixture(scope="module")
def full_recipe():
    return build(model_cfg(REPO / "configs" / "ds2d2" / "retina_r101_r18_dior.py"))


@pytest.mark.parametrize("name", sorted(ABLATION_CHECKS))
def test_ablation_changes_what_it_says(name, full_recipe):
    path = REPO / "configs" / "ds2d2" / "ablations" / f"retina_r101_r18_dior_{name}.py"
    model = build(model_cfg(path))
    assert ABLATION_CHECKS[name](model), name
    assert not ABLATION_CHECKS[name](full_recipe), f"{name}: the full recipe already does this"
