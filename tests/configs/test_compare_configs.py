"""The comparison-method configs (configs/compare), the teacher-student gap configs
(configs/ds2d2/gap) and the high-frequency-amplifier-only ablation: every published value against
the tables below, every config trains one iteration on CPU (tiny inputs, random init)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ds2d2_testlib import REPO, build, load_config, make_batch
from test_configs import TRAINABLE, model_cfg, num_classes
from test_published_configs import CHECKED, PUBLISHED

DS2D2 = REPO / "configs" / "ds2d2"
COMPARE = REPO / "configs" / "compare"
GAP = DS2D2 / "gap"
HIGH_AMP_ONLY = DS2D2 / "ablations" / "retina_r101_r18_dior_high_amp_only.py"

R101_TEACHER = DS2D2 / "retina_r101_dior.py"
R101_CKPT = "work_dirs/retina_r101_dior/epoch_24.pth"
R18_BASELINE = DS2D2 / "retina_r18_dior.py"
#: The distilled student's config: its schedule (lr 0.005) is every comparison method's; the R18
#: baseline differs from it in the lr alone (the authors' 0.02; test_published_configs.py).
DS2D2_R18 = DS2D2 / "retina_r101_r18_dior.py"

#: Feature-level methods in the explicit stream's place: the published RetinaNet values of each
#: (official config named in each config's comment).
#: FitNet: LutingWang/HEAD configs/_base_/models/fitnet_retina.py (1x1 conv per level, 5 levels,
#:   MSE weight 1.0).
#: FGD: yzd-v/FGD configs/distillers/fgd/fgd_retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py.
#: PKD: MMRazor configs/distill/mmdet/pkd/pkd_fpn_retina_x101_retina_r50_2x_coco.py (fpn0-3).
#: MGD: yzd-v/MGD det/configs/distillers/mgd/retina_rx101_64x4d_distill_retina_r50_fpn_2x_coco.py.
FEATURE = {
    "retina_r101_r18_dior_fitnet.py": dict(type="FitNetLoss", loss_weight=1.0, levels=None),
    "retina_r101_r18_dior_fgd.py": dict(type="FGDLoss", temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                                        gamma_fgd=5e-4, lambda_fgd=5e-6, levels=None),
    "retina_r101_r18_dior_pkd.py": dict(type="PKDLoss", loss_weight=10.0, levels=(0, 1, 2, 3)),
    "retina_r101_r18_dior_mgd.py": dict(type="MGDLoss", alpha_mgd=2e-5, lambda_mgd=0.65,
                                        levels=None),
}
#: The loss terms each feature method logs.
FEATURE_TERMS = {
    "retina_r101_r18_dior_fitnet.py": {"loss_fitnet"},
    "retina_r101_r18_dior_fgd.py": {"loss_fgd_fg", "loss_fgd_bg", "loss_fgd_mask",
                                    "loss_fgd_global"},
    "retina_r101_r18_dior_pkd.py": {"loss_pkd"},
    "retina_r101_r18_dior_mgd.py": {"loss_mgd"},
}
#: Prediction-level methods in the implicit stream's place: (implicit, kd_cls, kd_reg, terms).
#: CrossKD's are published (jbwang1997/CrossKD configs/crosskd/crosskd_r18_retinanet_r50_fpn_1x_
#: coco.py and crosskd_r50_retinanet_r101_fpn_2x_coco.py, kd_cfg); prediction KD takes CrossKD's
#: published GIoU regression term and plain BCE (beta 0) for classification (this project's).
PREDICTION = {
    "retina_r101_r18_dior_crosskd.py": (
        dict(type="CrossKD", weight=1.0, reused_teacher_head_idx=3),
        dict(type="KDQualityFocalLoss", beta=1.0, loss_weight=1.0),
        dict(type="GIoULoss", loss_weight=1.0),
        {"loss_crosskd_cls", "loss_crosskd_reg"}),
    "retina_r101_r18_dior_predkd.py": (
        dict(type="PredictionKD", weight=1.0),
        dict(type="KDQualityFocalLoss", beta=0.0, loss_weight=1.0),
        dict(type="GIoULoss", loss_weight=1.0),
        {"loss_pred_cls", "loss_pred_reg"}),
}
#: The official CrossKD students' FPN (both RetinaNet configs named above, neck
#: add_extra_convs): P6 from P5. This project's CrossKD student keeps the baseline's (mmdet's
#: RetinaNet, P6 from C5) so that every method trains one student; the README says so.
CROSSKD_OFFICIAL_EXTRA_CONVS = "on_output"
BASELINE_EXTRA_CONVS = "on_input"
README = COMPARE / "README.md"

#: Gap students: depth, ImageNet weights, FPN in_channels (the backbone's stage outputs).
STUDENTS = {
    34: ("torchvision://resnet34", [64, 128, 256, 512]),
    50: ("torchvision://resnet50", [256, 512, 1024, 2048]),
}
#: The ResNeXt-101 teacher's backbone, as mmdet's retinanet_x101-64x4d_fpn_1x_coco.py.
X101 = dict(type="ResNeXt", depth=101, groups=64, base_width=4,
            init_cfg=dict(type="Pretrained", checkpoint="open-mmlab://resnext101_64x4d"))
GAP_DISTILLERS = ("retina_r101_r34_dior.py", "retina_r101_r50_dior.py", "retina_x101_r18_dior.py")

#: Configs whose text says "published", checked here (tests/configs/test_published_configs.py).
PUBLISHED_CHECKED = {*(COMPARE / n for n in (*FEATURE, *PREDICTION)),
                     *(GAP / n for n in GAP_DISTILLERS)}

#: Trained here: test_configs.py trains the configs of folders ds2d2, demo and ablations only
#: (the new ablation is trained there).
NEW = sorted([*COMPARE.glob("*.py"), *GAP.glob("*.py")])
assert not set(NEW) & set(TRAINABLE), "trained twice"
assert HIGH_AMP_ONLY in TRAINABLE


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def non_model(path: Path) -> dict:
    cfg = load_config(path).to_dict()
    cfg.pop("model")
    return cfg


# -- the configs as written ---------------------------------------------------------------------
def test_every_compare_config_is_in_a_table():
    assert {p.name for p in COMPARE.glob("*.py")} == set(FEATURE) | set(PREDICTION)


@pytest.mark.parametrize("name", sorted(FEATURE) + sorted(PREDICTION))
def test_compare_config_is_the_ds2d2_setting_with_one_method(name):
    """The DS2D2 R101 -> R18 DIOR distiller (its student, teacher, schedule and data: the student
    baseline's) with only the distillation replaced, the amplifiers off."""
    path = COMPARE / name
    cfg = load_config(path)
    model = cfg.model
    assert non_model(path) == non_model(DS2D2_R18)  # 24-epoch schedule, data, runtime
    assert cfg.train_cfg.max_epochs == 24
    assert model.type == "SpectralDistiller"
    assert model.student.to_dict() == load_config(R18_BASELINE).model.to_dict()
    assert Path(model.teacher_config).resolve() == R101_TEACHER.resolve()
    assert model.teacher_ckpt == R101_CKPT
    assert model.amplifier_config is None and model.amplifier_ckpt is None
    dc = model.distill_cfg
    assert (dc.amplifiers.full, dc.amplifiers.high) == (0.0, 0.0)
    text = path.read_text()
    assert "published" in text.lower() and "this project's" in text.lower()


@pytest.mark.parametrize("name", sorted(FEATURE))
def test_feature_method_takes_the_explicit_place_with_its_published_values(name):
    dc = load_config(COMPARE / name).model.distill_cfg
    assert dc.explicit.to_dict() == FEATURE[name]  # nothing of DISWLoss left over
    assert dc.get("implicit") is None


@pytest.mark.parametrize("name", sorted(PREDICTION))
def test_prediction_method_has_its_published_values_and_no_explicit_stream(name):
    implicit, kd_cls, kd_reg, _ = PREDICTION[name]
    dc = load_config(COMPARE / name).model.distill_cfg
    assert dc.implicit.to_dict() == implicit
    assert dc.kd_cls.to_dict() == kd_cls and dc.kd_reg.to_dict() == kd_reg
    assert dc.explicit is None  # no explicit stream, no adapter parameters


def test_crosskd_student_fpn_is_the_baselines_and_the_official_one_is_named():
    baseline = load_config(R18_BASELINE).model.neck.add_extra_convs
    assert baseline == BASELINE_EXTRA_CONVS
    path = COMPARE / "retina_r101_r18_dior_crosskd.py"
    assert load_config(path).model.student.neck.add_extra_convs == baseline
    text = path.read_text()
    assert f"'{CROSSKD_OFFICIAL_EXTRA_CONVS}'" in text
    assert f"model.student.neck.add_extra_convs={CROSSKD_OFFICIAL_EXTRA_CONVS}" in text
    readme = README.read_text()
    assert f"add_extra_convs='{CROSSKD_OFFICIAL_EXTRA_CONVS}'" in readme
    assert f"model.student.neck.add_extra_convs={CROSSKD_OFFICIAL_EXTRA_CONVS}" in readme


def test_compare_schedule_is_the_baselines_but_for_its_lr():
    """The methods train on the distilled student's schedule; the baseline config carries the
    authors' baseline lr, and the README gives the option that puts it on the methods' one."""
    baseline, student = non_model(R18_BASELINE), non_model(DS2D2_R18)
    assert baseline["optim_wrapper"]["optimizer"].pop("lr") == 0.02
    assert student["optim_wrapper"]["optimizer"].pop("lr") == 0.005
    assert baseline == student
    assert "--cfg-options optim_wrapper.optimizer.lr=0.005" in README.read_text()


@pytest.mark.parametrize("depth", sorted(STUDENTS))
def test_gap_baseline_students(depth):
    ckpt, in_channels = STUDENTS[depth]
    path = GAP / f"retina_r{depth}_dior.py"
    model = load_config(path).model
    assert (model.backbone.type, model.backbone.depth) == ("ResNet", depth)
    assert model.backbone.init_cfg == dict(type="Pretrained", checkpoint=ckpt)
    assert model.neck.in_channels == in_channels
    assert model.bbox_head.num_classes == 20
    assert non_model(path) == non_model(DS2D2_R18)
    # everything else is the R18 baseline's
    r18 = load_config(R18_BASELINE).model.to_dict()
    mine = model.to_dict()
    for m in (r18, mine):
        for part, key in (("backbone", "depth"), ("backbone", "init_cfg"), ("neck", "in_channels")):
            del m[part][key]
    assert mine == r18


@pytest.mark.parametrize("depth", sorted(STUDENTS))
def test_gap_distillers_are_the_published_recipe_with_another_student(depth):
    path = GAP / f"retina_r101_r{depth}_dior.py"
    model = load_config(path).model
    ref = load_config(DS2D2_R18).model
    assert model.student.to_dict() == load_config(GAP / f"retina_r{depth}_dior.py").model.to_dict()
    for key in ("teacher_config", "teacher_ckpt", "amplifier_config", "amplifier_ckpt",
                "distill_cfg"):
        assert model[key] == ref[key], key
    assert_published_ds2d2_weights(model.distill_cfg)
    assert non_model(path) == non_model(DS2D2_R18)


def assert_published_ds2d2_weights(dc) -> None:
    (low, high), (full, hf), kd = PUBLISHED["retina_r101_r18_dior.py"]
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert (dc.kd_cls.to_dict(), dc.kd_reg.to_dict()) == (kd["kd_cls"], kd["kd_reg"])
    assert dc.explicit.adapter_bias is False and dc.explicit.decomposer == "haar"


def test_x101_teacher_is_mmdets_resnext_on_the_r101_recipe():
    model = load_config(GAP / "retina_x101_dior.py").model
    backbone = model.backbone.to_dict()
    assert {k: backbone[k] for k in X101} == X101
    import mmdet

    mmdet_x101 = Path(mmdet.__file__).parent / ".mim/configs/retinanet/" \
        "retinanet_x101-64x4d_fpn_1x_coco.py"
    assert backbone == load_config(mmdet_x101).model.backbone.to_dict()  # mmdet's own
    assert model.neck.in_channels == [256, 512, 1024, 2048]
    r101 = load_config(R101_TEACHER).model.to_dict()
    mine = model.to_dict()
    del r101["backbone"], mine["backbone"]
    assert mine == r101  # neck, head, data preprocessor: the R101 teacher's
    assert non_model(GAP / "retina_x101_dior.py") == non_model(R101_TEACHER)


def test_x101_amplifier_and_distiller_point_at_the_x101_stages():
    amp = load_config(GAP / "retina_x101_hfamp_dior.py").model
    assert amp.type == "HighFrequencyAmplifier" and amp.decomposer == "haar"
    assert amp.detector.to_dict() == load_config(GAP / "retina_x101_dior.py").model.to_dict()
    assert amp.teacher_ckpt == "work_dirs/retina_x101_dior/epoch_24.pth"
    assert Path(amp.teacher_config).resolve() == (GAP / "retina_x101_dior.py").resolve()
    model = load_config(GAP / "retina_x101_r18_dior.py").model
    assert model.student.to_dict() == load_config(R18_BASELINE).model.to_dict()
    assert Path(model.teacher_config).resolve() == (GAP / "retina_x101_dior.py").resolve()
    assert model.teacher_ckpt == "work_dirs/retina_x101_dior/epoch_24.pth"
    assert Path(model.amplifier_config).resolve() == (GAP / "retina_x101_hfamp_dior.py").resolve()
    assert model.amplifier_ckpt == "work_dirs/retina_x101_hfamp_dior/epoch_24.pth"
    assert model.distill_cfg == load_config(DS2D2_R18).model.distill_cfg
    assert_published_ds2d2_weights(model.distill_cfg)
    assert non_model(GAP / "retina_x101_r18_dior.py") == non_model(DS2D2_R18)


def test_published_claims_are_the_ones_checked_here():
    said = {p for p in [*COMPARE.glob("*.py"), *GAP.glob("*.py")]
            if "published" in p.read_text().lower()}
    assert said == PUBLISHED_CHECKED
    assert PUBLISHED_CHECKED <= CHECKED  # test_published_configs.py knows they are checked


def test_high_amp_only_ablation():
    model = load_config(HIGH_AMP_ONLY).model
    ref = load_config(DS2D2_R18).model
    assert (model.distill_cfg.amplifiers.full, model.distill_cfg.amplifiers.high) == (0.0, 1.0)
    assert model.amplifier_config == ref.amplifier_config
    assert model.amplifier_ckpt == ref.amplifier_ckpt
    built = build(model_cfg(HIGH_AMP_ONLY))
    assert [a.name for a in built.amplifiers] == ["high"]


# -- one training iteration of each --------------------------------------------------------------
def built_checks(name: str, model: torch.nn.Module, losses: dict) -> None:
    """What the config says reaches the built model and its losses."""
    if name in FEATURE:
        want = FEATURE[name]
        assert type(model.explicit).__name__ == want["type"]
        for key, value in want.items():
            if key == "levels":  # None: all 5 FPN levels
                assert model.explicit.levels == (tuple(range(5)) if value is None else value)
            elif key != "type":
                assert getattr(model.explicit, key) == value, key
        assert model.implicit is None
        assert FEATURE_TERMS[name] <= set(losses)
        assert not [k for k in losses if k.startswith(("loss_exp_", "loss_imp_"))]
    elif name in PREDICTION:
        implicit, kd_cls, kd_reg, terms = PREDICTION[name]
        assert type(model.implicit).__name__ == implicit["type"]
        assert model.implicit.weight == implicit["weight"]
        if "reused_teacher_head_idx" in implicit:
            assert model.implicit.reused_teacher_head_idx == implicit["reused_teacher_head_idx"]
        assert type(model.kd_cls).__name__ == kd_cls["type"]
        assert (model.kd_cls.beta, model.kd_cls.loss_weight) == (kd_cls["beta"], 1.0)
        assert type(model.kd_reg).__name__ == kd_reg["type"]
        assert model.kd_reg.loss_weight == kd_reg["loss_weight"]
        assert model.explicit is None
        assert terms <= set(losses)
        assert all(losses[t].requires_grad for t in terms)
        assert not [k for k in losses if k.startswith(("loss_exp_", "loss_imp_"))]
    else:
        return
    assert model.amplifiers == []


@pytest.mark.parametrize("path", NEW, ids=rel)
def test_one_training_iteration(path):
    cfg = model_cfg(path)
    model = build(cfg)
    model.train()
    inputs, samples = make_batch(model, batch_size=2, size=64, num_classes=num_classes(cfg))
    losses = model.loss(inputs, samples)
    built_checks(path.name, model, losses)
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    trained = model.student if hasattr(model, "student") else model
    assert any(p.grad is not None for p in trained.parameters())
    if path.name in FEATURE and any(True for _ in model.explicit.parameters()):
        assert any(p.grad is not None for p in model.explicit.parameters())
