"""A tiny, complete distillation run on disk for the engine tests: the built-in synthetic data
(8 + 2 images of 96 px), random teacher and amplifier checkpoints of the demo architecture, and a
config that inherits the demo's distiller with CPU-friendly loaders and no augmentation."""

from __future__ import annotations

from pathlib import Path

import torch
from ds2d2_testlib import REPO, build

DEMO = REPO / "configs" / "demo"


def _save(model, path: Path) -> str:
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return str(path)


def tiny_distill_config(root: Path, epochs: int, probe: bool = False) -> Path:
    """Write the data, checkpoints and config under ``root``; returns the config path.

    Args:
        root: An empty folder.
        epochs: Training epochs (2 iterations each, batch 4).
        probe: Add the ResumeProbeHook of ``resume_probe.py`` (needs this folder on PYTHONPATH).
    """
    from mmengine.config import Config

    from ds2d2_mm.tooling.synthetic import ensure_synthetic_dataset

    data = ensure_synthetic_dataset(root / "data", num_train=8, num_val=2, img_size=96, seed=1)
    teacher_cfg = Config.fromfile(str(DEMO / "retina_teacher_synthetic.py")).model.to_dict()
    teacher = _save(build(teacher_cfg), root / "teacher.pth")
    amp_cfg = Config.fromfile(str(DEMO / "retina_hfamp_synthetic.py")).model.to_dict()
    amp_cfg["teacher_ckpt"] = teacher
    amp = _save(build(amp_cfg), root / "amp.pth")
    imports = "['ds2d2_mm', 'resume_probe']" if probe else "['ds2d2_mm']"
    hooks = "[dict(type='ResumeProbeHook')]" if probe else "[]"
    root_s = str(data) + "/"
    config = root / "tiny_distill.py"
    config.write_text(f"""
_base_ = [{str(DEMO / 'retina_distill_synthetic.py')!r}]
custom_imports = dict(imports={imports}, allow_failed_imports=False)
custom_hooks = {hooks}
model = dict(teacher_ckpt={teacher!r}, amplifier_ckpt={amp!r})
train_cfg = dict(max_epochs={epochs}, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=10), logger=dict(interval=1))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={root_s!r}, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={root_s!r}))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={str(data / 'annotations' / 'val.json')!r})
test_evaluator = val_evaluator
""")
    return config
