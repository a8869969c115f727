"""A wrong distillation config stops before the first iteration, naming the key and the value."""

from __future__ import annotations

import math

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, tiny_faster_rcnn, tiny_retinanet

from ds2d2_mm.utils.errors import CheckpointError, ConfigError


def retina(**distill):
    return distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16), **distill)


@pytest.mark.parametrize("distill,message", [
    (dict(amplifiers=dict(full=1.0, hihg=1.0)),
     r"distill_cfg\.amplifiers: unknown keys \['hihg'\]"),
    (dict(amplifiers=dict(full=-1.0)),
     r"distill_cfg\.amplifiers\.full must be finite and >= 0, got -1"),
    (dict(amplifiers=dict(high=math.nan)), r"distill_cfg\.amplifiers\.high .*got nan"),
    (dict(explicit=dict(lambda_low=-5)), r"distill_cfg\.explicit\.lambda_low .* got -5"),
    (dict(explicit=dict(lambda_hihg=1.0)),
     r"distill_cfg\.explicit: unknown keys \['lambda_hihg'\]"),
    (dict(explicit=dict(num_levels=3)), r"distill_cfg\.explicit: \['num_levels'\] are set by"),
    (dict(explicit=dict(decomposer="db99")), r"Unknown decomposer 'db99'"),
    (dict(kd_cls=dict(loss_weight=-1)), r"distill_cfg\.kd_cls\.loss_weight .* got -1"),
    (dict(kd_cls=dict(betta=2.0)), r"distill_cfg\.kd_cls: unknown keys \['betta'\]"),
    (dict(kd_reg=dict(type="NoSuchLoss")), r"distill_cfg\.kd_reg\.type: 'NoSuchLoss' is not"),
    (dict(amplifier_input="rwa"), r"distill_cfg\.amplifier_input must be one of"),
    (dict(nonfinite="ignore"), r"distill_cfg\.nonfinite must be one of"),
    (dict(unknown_key=1), r"distill_cfg: unknown keys \['unknown_key'\]"),
])
def test_bad_distill_cfg_names_the_key_and_value(distill, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        build(retina(**distill))


def test_class_count_mismatch_names_both_counts():
    cfg = distiller_cfg(tiny_retinanet(num_classes=3), tiny_retinanet(width=16, num_classes=4))
    with pytest.raises(ConfigError, match="student predicts 3 classes and the teacher 4"):
        build(cfg)
    cfg = distiller_cfg(tiny_faster_rcnn(num_classes=3), tiny_faster_rcnn(width=16, num_classes=5))
    with pytest.raises(ConfigError, match="student predicts 3 classes and the teacher 5"):
        build(cfg)


def test_teacher_of_another_family_is_a_heterogeneous_pair_or_refused_naming_both():
    """A Faster R-CNN teacher for a RetinaNet student was refused before heterogeneous pairs
    (tests/models/distillers/test_heterogeneous_pairs.py); now one that can be compared is
    accepted, one that cannot is refused naming both families."""
    model = build(distiller_cfg(tiny_retinanet(), tiny_faster_rcnn(width=16)))
    assert model.pair.heterogeneous
    assert type(model.pair.amplifier_strategy).__name__ == "TeacherRoIStrategy"
    cfg = distiller_cfg(tiny_retinanet(), tiny_faster_rcnn(width=16, num_classes=5))
    with pytest.raises(ConfigError, match=r"student RetinaNet \(RetinaHead\), teacher "
                                          r"FasterRCNN .*3 classes and the teacher 5"):
        build(cfg)


def test_missing_teacher_checkpoint_names_the_file_and_the_stage(tmp_path):
    cfg = retina()
    cfg.update(teacher_ckpt=str(tmp_path / "nope.pth"), allow_random_teacher=False)
    with pytest.raises(CheckpointError, match=r"teacher checkpoint not found.*nope\.pth"):
        build(cfg)


def test_unreadable_teacher_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "teacher.pth"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    cfg = retina()
    cfg.update(teacher_ckpt=str(bad))
    with pytest.raises(CheckpointError, match=r"teacher\.pth.*weights_only"):
        build(cfg)


# ---------------------------------------------------------------------------------------------
# Provenance: the teacher and amplifier files a checkpoint was trained with
# ---------------------------------------------------------------------------------------------
def save_model(model, path):
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return str(path)


@pytest.fixture
def stage_files(tmp_path):
    """A teacher checkpoint, an amplifier stage trained from it, and a second teacher."""
    teacher_cfg = tiny_retinanet(width=16)
    teacher = build(teacher_cfg)
    t1 = save_model(teacher, tmp_path / "teacher1.pth")
    with torch.no_grad():
        teacher.bbox_head.retina_cls.bias.add_(1.0)
    t2 = save_model(teacher, tmp_path / "teacher2.pth")
    amp = build(dict(type="HighFrequencyAmplifier", detector=teacher_cfg, teacher_ckpt=t1))
    from ds2d2_mm.utils.checkpoint import digest_hex, file_sha256

    assert digest_hex(amp.teacher_sha256) == file_sha256(t1)
    a1 = save_model(amp, tmp_path / "amp1.pth")
    return teacher_cfg, t1, t2, a1


def test_amplifier_trained_for_another_teacher_is_refused_with_both_checksums(stage_files):
    from ds2d2_mm.utils.checkpoint import file_sha256

    teacher_cfg, t1, t2, a1 = stage_files
    cfg = distiller_cfg(tiny_retinanet(), teacher_cfg)
    cfg.update(teacher_ckpt=t2, amplifier_ckpt=a1, allow_random_teacher=False)
    with pytest.raises(CheckpointError) as err:
        build(cfg)
    message = str(err.value)
    assert file_sha256(t1) in message and file_sha256(t2) in message
    assert "--accept-changed-checkpoints" in message
    cfg["distill_cfg"]["checkpoint_changes"] = "warn"
    build(cfg)  # the explicit override


def test_resume_with_a_changed_teacher_file_is_refused(stage_files, tmp_path):
    teacher_cfg, t1, t2, a1 = stage_files
    cfg = distiller_cfg(tiny_retinanet(), teacher_cfg)
    cfg.update(teacher_ckpt=t1, amplifier_ckpt=a1, allow_random_teacher=False)
    model = build(cfg)
    from ds2d2_mm.utils.checkpoint import digest_hex, file_sha256

    state = model.state_dict()
    assert digest_hex(state["provenance_sha256"][0]) == file_sha256(t1)
    assert digest_hex(state["provenance_sha256"][1]) == file_sha256(a1)
    ckpt = save_model(model, tmp_path / "epoch_1.pth")
    # the teacher file is overwritten by another one between the save and the resume
    (tmp_path / "teacher1.pth").write_bytes((tmp_path / "teacher2.pth").read_bytes())
    from mmengine.runner.checkpoint import load_checkpoint

    # (the amplifier no longer matches the teacher either: accepted here to reach the resume)
    again = build(cfg | {"distill_cfg": dict(checkpoint_changes="warn")})
    again.distill_cfg["checkpoint_changes"] = "refuse"
    with pytest.raises(CheckpointError, match="teacher checkpoint changed since"):
        load_checkpoint(again, ckpt, map_location="cpu")
