"""The shipped cross-modal configs (configs/multimodal, this project's extension): the RGB -> IR
distiller trains one iteration on paired files written here through its own pipeline, its
student is exported with tools/export_student.py and, loaded into the infrared student config (a
stock one-band RetinaNet reading test/ir/ alone), predicts what the distiller predicts."""

from __future__ import annotations

import copy

import pytest
import torch
from crossmodal_testlib import SIZE, write_paired
from ds2d2_testlib import REPO, build, load_config

from ds2d2_mm.utils.errors import ConfigError

MULTIMODAL = REPO / "configs" / "multimodal"
DISTILLER = MULTIMODAL / "retina_r101_rgb_r18_ir_dronevehicle.py"
STUDENT_IR = MULTIMODAL / "retina_r18_dronevehicle_ir.py"


def offline(cfg: dict) -> dict:
    """``cfg`` with every ``Pretrained*`` init_cfg removed, in place (tests never download)."""
    for value in cfg.values():
        if isinstance(value, dict):
            offline(value)
    init = cfg.get("init_cfg")
    if isinstance(init, dict) and str(init.get("type", "")).startswith("Pretrained"):
        cfg["init_cfg"] = None
    return cfg


def small(pipeline: list) -> list:
    """``pipeline`` with its Resize at the size of the test images, no random flip."""
    out = copy.deepcopy(pipeline)
    for step in out:
        if step["type"] == "Resize":
            step["scale"] = (SIZE, SIZE)
        if step["type"] == "RandomFlip":
            step["prob"] = 0.0
    return out


def dataset(cfg_dataset: dict, root, split: str, **overrides):
    from mmdet.registry import DATASETS

    ds = copy.deepcopy(cfg_dataset)
    ds.update(data_root=str(root), ann_file=f"annotations/{split}.json",
              pipeline=small(ds["pipeline"]), **overrides)
    ds.pop("filter_cfg", None)
    return DATASETS.build(ds)


def batch(ds, indices=(0, 1)) -> dict:
    from mmengine.dataset import pseudo_collate

    return pseudo_collate([ds[i] for i in indices])


@pytest.fixture(scope="module")
def distiller_config():
    return load_config(DISTILLER)


def test_shipped_configs_are_labelled_as_an_extension():
    for path in sorted(MULTIMODAL.glob("*.py")):
        head = path.read_text().split("\n_base_")[0]
        assert "this project's extension" in head, path.name


def test_stream_weights_are_the_published_retinanet_dior_ones(distiller_config):
    from test_published_configs import PUBLISHED

    (low, high), (full, hf), kd = PUBLISHED["retina_r101_r18_dior.py"]
    dc = distiller_config.model.distill_cfg
    assert (dc.explicit.lambda_low, dc.explicit.lambda_high) == (low, high)
    assert (dc.amplifiers.full, dc.amplifiers.high) == (full, hf)
    assert dc.kd_cls.to_dict() == kd["kd_cls"] and dc.kd_reg.to_dict() == kd["kd_reg"]
    assert (dc.teacher_input, dc.student_input) == ("rgb", "ir")


def test_the_shipped_distiller_names_modalities_of_its_datasets(distiller_config):
    from ds2d2_mm.apis.runner import check_distill_config

    check_distill_config(distiller_config)
    bad = copy.deepcopy(distiller_config)
    bad.model.distill_cfg.teacher_input = "nir"
    with pytest.raises(ConfigError, match=r"distill_cfg\.teacher_input='nir' is not a modality of "
                                          r"train_dataloader\.dataset \(its data_prefix keys\): "
                                          r"known \['rgb', 'ir'\]"):
        check_distill_config(bad)
    single = load_config(STUDENT_IR)
    single.model = copy.deepcopy(distiller_config.model)
    with pytest.raises(ConfigError, match="train_dataloader.dataset reads one image per sample"):
        check_distill_config(single)


def test_cross_modal_iteration_export_and_prediction_on_ir_alone(distiller_config, tmp_path):
    from mmengine.runner import load_checkpoint

    from ds2d2_mm.cli.export_student import main as export_main

    write_paired(tmp_path / "data", "train")
    write_paired(tmp_path / "data", "test", seed=1)
    cfg = distiller_config
    model_cfg = offline(cfg.model.to_dict())
    model_cfg.update(teacher_ckpt=None, amplifier_ckpt=None, allow_random_teacher=True)
    model_cfg["student"]["test_cfg"]["score_thr"] = 0.0  # random heads score below 0.05
    model = build(model_cfg)
    assert model.router.teacher == (0, 3) and model.router.student == (3, 4)

    # one iteration on pairs loaded by the config's own training pipeline
    model.train()
    train = dataset(cfg.train_dataloader.dataset.to_dict(), tmp_path / "data", "train")
    data = model.data_preprocessor(batch(train), True)
    assert data["inputs"].shape[1] == 4
    losses = model.loss(data["inputs"], data["data_samples"])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    # the stem is frozen (frozen_stages=1) and residual branches start at zero (zero-init BN)
    trained = model.student.neck.lateral_convs[0].conv.weight
    before = trained.detach().clone()
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    optim.zero_grad()
    total.backward()
    optim.step()
    assert not torch.equal(before, trained)

    # the distiller's predictions on the paired test images
    model.eval()
    test = dataset(cfg.test_dataloader.dataset.to_dict(), tmp_path / "data", "test")
    with torch.no_grad():
        ours = model.test_step(batch(test))

    # export, load into the stock infrared config, predict from the infrared files alone
    ckpt, exported = tmp_path / "distiller.pth", tmp_path / "student_ir.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, ckpt)
    export_main([str(ckpt), str(exported)])
    ir_cfg = load_config(STUDENT_IR)
    student_cfg = offline(ir_cfg.model.to_dict())
    student_cfg["test_cfg"]["score_thr"] = 0.0
    student = build(student_cfg)
    assert type(student).__name__ == "RetinaNet" and student.backbone.conv1.in_channels == 1
    load_checkpoint(student, str(exported), map_location="cpu", strict=True)
    student.eval()
    ir_test = dataset(ir_cfg.test_dataloader.dataset.to_dict(), tmp_path / "data", "test")
    assert ir_test.get_data_info(0)["img_path"].endswith("test/ir/00000.png")
    ir_batch = batch(ir_test)
    assert ir_batch["inputs"][0].shape[0] == 1  # the infrared image alone
    with torch.no_grad():
        theirs = student.test_step(ir_batch)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
        assert len(a.pred_instances) > 0
