"""The paper configs carry the published recipe: the table of issue "The published recipe,
exactly", copied here as the reference, checked value by value (config text and built model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ds2d2_testlib import REPO, load_config

DS2D2 = REPO / "configs" / "ds2d2"

#: Published weights: (explicit low, high), (amplifier full, high), KD losses.
RETINA_KD = dict(kd_cls=dict(type="KDQualityFocalLoss", beta=1.0, loss_weight=1.0),
                 kd_reg=dict(type="GIoULoss", loss_weight=1.0))
RCNN_KD = dict(kd_cls=dict(type="KDKLDivLoss", temperature=3.0, loss_weight=0.5,
                           reduction="sum"),
               kd_reg=dict(type="L1Loss", loss_weight=1.0))
PUBLISHED = {
    "retina_r101_r18_dior.py": ((1e-5, 1e-5), (1.0, 1.0), RETINA_KD),
    "faster_rcnn_r101_r18_dior.py": ((0.5, 0.5), (1e-5, 1e-5), RCNN_KD),
    "retina_r101_r18_dota.py": ((7e-5, 5e-5), (0.7, 0.5), RETINA_KD),
    "faster_rcnn_r101_r18_dota.py": ((0.12, 1.2), (1.5e-3, 3e-3), RCNN_KD),
}
#: Published schedule: lr per total batch of 16, 24 epochs of mmdet's 2x.
LR = {"retina": 0.005, "faster_rcnn": 0.02}
#: The authors' baselines (PolarAid/DS2D2 configs/{retinanet,faster_rcnn}/*_r18_fpn_2x_*.py) where
#: their lr is not the family's: the RetinaNet R18 DIOR baseline keeps mmdet's schedule_2x lr 0.02
#: (its 0.005 override is commented out); the distilled student trains at 0.005 (issue "CrossKD as
#: its authors ran it, the remaining recipe differences named").
BASELINE_LR = {"retina_r101_r18_dior.py": 0.02}
SCALE = {"dior": 800, "dota": 1024}
#: The authors' training-set filter (configs/_base_/datasets/{dior,dota}.py): images without boxes
#: and images with a side under 32 px are left out.
TRAIN_FILTER = dict(filter_empty_gt=True, min_size=32)


def stages(distill: str) -> dict[str, Path]:
    """The four configs of one recipe, from the distiller's name."""
    family, rest = distill.split("_r101_r18_")
    data = rest.removesuffix(".py")
    return {"teacher": DS2D2 / f"{family}_r101_{data}.py",
            "amplifier": DS2D2 / f"{family}_r101_hfamp_{data}.py",
            "baseline": DS2D2 / f"{family}_r18_{data}.py",
            "distill": DS2D2 / distill}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_distill_weights_are_the_published_table(name):
    (low, high), (full, hf), kd = PUBLISHED[name]
    dc = load_config(DS2D2 / name).model.distill_cfg
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert dc.explicit.get("adapter_bias", False) is False
    assert dc.explicit.get("decomposer", "haar") == "haar"
    assert dc.explicit.get("use_disw", True) is True
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert dc.kd_cls.to_dict() == kd["kd_cls"]
    assert dc.kd_reg.to_dict() == kd["kd_reg"]
    assert dc.get("amplifier_input", "auto") in ("auto", "raw")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_built_distiller_has_the_published_terms(name):
    """What the config says reaches the built model (random teacher, no checkpoints)."""
    from ds2d2_testlib import build

    (low, high), (full, hf), kd = PUBLISHED[name]
    cfg = load_config(DS2D2 / name).model.to_dict()
    cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    cfg["student"]["backbone"]["init_cfg"] = None
    model = build(cfg)
    assert (model.explicit.lambda_low, model.explicit.lambda_high) == (low, high)
    assert model.connector.convs[0].bias is None and len(model.connector.convs) == 1
    assert model.amplifier_reads_raw  # 256 FPN channels on both sides
    assert [a.name for a in model.amplifiers] == ["full", "high"]
    assert type(model.kd_cls).__name__ == kd["kd_cls"]["type"]
    assert type(model.kd_reg).__name__ == kd["kd_reg"]["type"]
    if kd is RCNN_KD:
        assert (model.kd_cls.temperature, model.kd_cls.loss_weight,
                model.kd_cls.reduction) == (3.0, 0.5, "sum")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("stage", ["teacher", "amplifier", "baseline", "distill"])
def test_every_stage_has_the_published_schedule_and_data(name, stage):
    family = name.split("_r101_")[0]
    data = name.removesuffix(".py").rsplit("_", 1)[1]
    cfg = load_config(stages(name)[stage])
    opt = cfg.optim_wrapper.optimizer
    lr = BASELINE_LR.get(name, LR[family]) if stage == "baseline" else LR[family]
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("SGD", lr, 0.9, 1e-4)
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_cfg.max_epochs == 24
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"]
    assert len(steps) == 1 and steps[0].milestones == [16, 22] and steps[0].end == 24
    assert cfg.train_dataloader.dataset.filter_cfg.to_dict() == TRAIN_FILTER
    pipeline = cfg.train_dataloader.dataset.pipeline
    resize = [p for p in pipeline if p.type == "Resize"]
    assert resize[0].scale == (SCALE[data], SCALE[data]) and resize[0].keep_ratio
    assert any(p.type == "RandomFlip" and p.prob == 0.5 for p in pipeline)
    classes = {"dior": 20, "dota": 15}[data]
    model = cfg.model
    if stage == "amplifier":
        model = model.detector
    elif stage == "distill":
        model = model.student
    head = model.bbox_head if family == "retina" else model.roi_head.bbox_head
    assert head.num_classes == classes
    # ImageNet-initialised backbones (torchvision), as mmdet's own configs
    depth = 18 if stage in ("baseline", "distill") else 101
    assert model.backbone.depth == depth
    assert model.backbone.init_cfg == dict(type="Pretrained",
                                           checkpoint=f"torchvision://resnet{depth}")


#: The option that puts the RetinaNet DIOR baseline on the distilled student's schedule.
SAME_SCHEDULE = {"optim_wrapper.optimizer.lr": LR["retina"]}


def test_retina_dior_baseline_is_the_authors_and_one_option_from_the_students_schedule():
    paths = stages("retina_r101_r18_dior.py")
    text = paths["baseline"].read_text()
    assert "PolarAid/DS2D2 configs/retinanet/retinanet_r18_fpn_2x_dior.py" in text
    assert "--cfg-options optim_wrapper.optimizer.lr=0.005" in text  # what a user types
    baseline, student = load_config(paths["baseline"]), load_config(paths["distill"])
    assert baseline.optim_wrapper.optimizer.lr != student.optim_wrapper.optimizer.lr
    baseline.merge_from_dict(SAME_SCHEDULE)  # as tools/train.py --cfg-options does
    for cfg in (baseline, student):
        cfg.pop("model")
    assert baseline.to_dict() == student.to_dict()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_stages_point_at_each_other_after_24_epochs(name):
    paths = stages(name)
    amp = load_config(paths["amplifier"]).model
    teacher_work = f"work_dirs/{paths['teacher'].stem}/epoch_24.pth"
    assert amp.type == "HighFrequencyAmplifier" and amp.teacher_ckpt == teacher_work
    assert amp.decomposer == "haar"
    dist = load_config(paths["distill"]).model
    assert dist.teacher_ckpt == teacher_work
    assert dist.amplifier_ckpt == f"work_dirs/{paths['amplifier'].stem}/epoch_24.pth"
    assert Path(dist.teacher_config).resolve() == paths["teacher"].resolve()
    assert Path(dist.amplifier_config).resolve() == paths["amplifier"].resolve()


#: The oriented-box configs are this project's extension; their stream weights are the published
#: RetinaNet / DOTA ones, and their comments say so.
ROTATED = DS2D2 / "rotated_retina_r101_r18_dota.py"


def test_rotated_extension_starts_from_the_published_dota_weights():
    dc = load_config(ROTATED).model.distill_cfg
    (low, high), (full, hf), _ = PUBLISHED["retina_r101_r18_dota.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert dc.kd_cls.to_dict() == RETINA_KD["kd_cls"]
    assert "extension" in ROTATED.read_text()


ORIENTED_RCNN = DS2D2 / "oriented_rcnn_r101_r18_dota.py"


def test_oriented_rcnn_extension_starts_from_the_published_faster_rcnn_dota_weights():
    dc = load_config(ORIENTED_RCNN).model.distill_cfg
    (low, high), (full, hf), kd = PUBLISHED["faster_rcnn_r101_r18_dota.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert (dc.kd_cls.to_dict(), dc.kd_reg.to_dict()) == (kd["kd_cls"], kd["kd_reg"])
    assert dc.explicit.adapter_bias is False
    assert "extension" in ORIENTED_RCNN.read_text()


SAM3_TEACHER = DS2D2 / "retina_sam3_r18_dior.py"


def test_sam3_teacher_recipe_uses_the_published_retinanet_dior_weights():
    dc = load_config(SAM3_TEACHER).model.distill_cfg
    (low, high), (full, hf), kd = PUBLISHED["retina_r101_r18_dior.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert (dc.kd_cls.to_dict(), dc.kd_reg.to_dict()) == (kd["kd_cls"], kd["kd_reg"])


#: SAR ships (this project's extension): Oriented R-CNN on mmrotate's SSDD / HRSID configs with
#: the published Faster R-CNN / DOTA stream weights and two-stage KD.
SAR = [REPO / "configs/sar" / f"oriented_rcnn_r101_r18_{d}.py" for d in ("ssdd", "hrsid")]


@pytest.mark.parametrize("path", SAR, ids=lambda p: p.name)
def test_sar_extension_starts_from_the_published_faster_rcnn_dota_weights(path):
    dc = load_config(path).model.distill_cfg
    (low, high), (full, hf), kd = PUBLISHED["faster_rcnn_r101_r18_dota.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert (dc.kd_cls.to_dict(), dc.kd_reg.to_dict()) == (kd["kd_cls"], kd["kd_reg"])
    assert "extension" in path.read_text()


#: The user's own multi-band COCO folder: the published RetinaNet schedule for every stage and the
#: published RetinaNet / DIOR stream weights for the distiller.
MULTIBAND = REPO / "configs/multiband"


@pytest.mark.parametrize("stage", ["retina_r101", "retina_r101_hfamp", "retina_r18",
                                   "retina_r101_r18"])
def test_own_multiband_stages_have_the_published_retinanet_schedule(stage):
    cfg = load_config(MULTIBAND / f"{stage}_coco_multiband.py")
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("SGD", LR["retina"], 0.9, 1e-4)
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_cfg.max_epochs == 24
    steps = [s for s in cfg.param_scheduler if s.type == "MultiStepLR"]
    assert len(steps) == 1 and steps[0].milestones == [16, 22] and steps[0].end == 24


def test_own_multiband_distiller_has_the_published_retinanet_dior_weights():
    dc = load_config(MULTIBAND / "retina_r101_r18_coco_multiband.py").model.distill_cfg
    (low, high), (full, hf), kd = PUBLISHED["retina_r101_r18_dior.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert (dc.kd_cls.to_dict(), dc.kd_reg.to_dict()) == (kd["kd_cls"], kd["kd_reg"])


#: The detector families' distillers (this project's extension) take the published RetinaNet
#: stream weights of their dataset; their KD losses are the family's own, not the table's.
FAMILY_DISTILLERS = {
    "rtmdet_l_tiny_dior.py": "retina_r101_r18_dior.py",
    "rtmdet_l_s_dior.py": "retina_r101_r18_dior.py",
    "fcos_r101_r18_dior.py": "retina_r101_r18_dior.py",
    "atss_r101_r18_dior.py": "retina_r101_r18_dior.py",
    "rotated_rtmdet_l_tiny_dota.py": "retina_r101_r18_dota.py",
    "rotated_rtmdet_l_s_dota.py": "retina_r101_r18_dota.py",
}
FAMILIES = REPO / "configs" / "families"


@pytest.mark.parametrize("name", sorted(FAMILY_DISTILLERS))
def test_family_distillers_have_the_published_retinanet_stream_weights(name):
    (low, high), (full, hf), _ = PUBLISHED[FAMILY_DISTILLERS[name]]
    dc = load_config(FAMILIES / name).model.distill_cfg
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)


#: Every config whose text says "published" is checked above (or, for the bases, through the
#: stage configs that inherit them); a new claim must be added to these tests.
CHECKED = {*(DS2D2 / n for n in PUBLISHED), *(p for n in PUBLISHED for p in stages(n).values()),
           ROTATED, ORIENTED_RCNN, SAM3_TEACHER, REPO / "configs/_base_/schedules/ds2d2_2x.py",
           REPO / "configs/_base_/retinanet_r101_recipe.py",
           REPO / "configs/_base_/faster_rcnn_r101_recipe.py"}
#: The comparison-method and teacher-student gap configs: checked in
#: tests/configs/test_compare_configs.py against the published values of each method (its table
#: PUBLISHED_CHECKED names them).
CHECKED |= {REPO / "configs/compare" / n for n in (
    "retina_r101_r18_dior_fitnet.py", "retina_r101_r18_dior_fgd.py", "retina_r101_r18_dior_pkd.py",
    "retina_r101_r18_dior_mgd.py", "retina_r101_r18_dior_crosskd.py",
    "retina_r101_r18_dior_predkd.py")}
CHECKED |= {DS2D2 / "gap" / n for n in (
    "retina_r101_r34_dior.py", "retina_r101_r50_dior.py", "retina_x101_r18_dior.py")}
#: The comparison benchmark's method configs (tests/tooling/test_compare_bench.py checks their
#: values against the same tables).
CHECKED |= {REPO / "configs/demo/bench" / f"{n}.py" for n in ("fitnet", "fgd", "pkd", "mgd",
                                                                "crosskd")}
#: The cross-modal distiller takes the published RetinaNet / DIOR stream weights
#: (tests/configs/test_multimodal_configs.py checks them against PUBLISHED).
CHECKED |= {REPO / "configs/multimodal/retina_r101_rgb_r18_ir_dronevehicle.py"}
CHECKED |= {*SAR, *MULTIBAND.glob("*_coco_multiband.py")}
CHECKED |= {FAMILIES / n for n in FAMILY_DISTILLERS}


def test_every_config_that_says_published_is_checked():
    claims = {p for p in (REPO / "configs").rglob("*.py") if "published" in p.read_text().lower()}
    # configs that only refer to a published value they do not use (e.g. the demo's comment
    # on why it does not take the published 1e-5) or say that none exists (the SAR teachers)
    # name it as such
    unchecked = {p for p in claims - CHECKED
                 if "not the published" not in p.read_text().lower()
                 and "no published" not in p.read_text().lower()}
    assert not unchecked, sorted(str(p.relative_to(REPO)) for p in unchecked)
