"""Loading sam3.pt-style checkpoints, and exporting a fine-tuned trunk back to that format."""

from __future__ import annotations

import pytest
import torch
from sam3_testlib import load_tool, make_backbone, random_images, requires_sam3

from ds2d2_mm.models.backbones import (
    SAM3_TRUNK_PREFIX,
    build_sam3_trunk,
    load_sam3_trunk,
    run_trunk,
)
from ds2d2_mm.utils.errors import CheckpointError

pytestmark = requires_sam3

#: Keys of other SAM3 parts that a real sam3.pt holds next to the trunk.
OTHER_KEYS = {
    "detector.backbone.language_backbone.encoder.weight": torch.randn(4, 4),
    "detector.transformer.decoder.norm.weight": torch.randn(4),
    "tracker.maskmem_tpos_enc": torch.randn(2, 3),
}


def fake_sam3_pt(path, trunk, nested=True) -> dict:
    """Write a synthetic sam3.pt holding ``trunk`` under the real prefix; return its state."""
    state = {SAM3_TRUNK_PREFIX + k: v.clone() for k, v in trunk.state_dict().items()}
    state.update({k: v.clone() for k, v in OTHER_KEYS.items()})
    torch.save({"model": state} if nested else state, path)
    return state


@pytest.fixture
def source_trunk():
    torch.manual_seed(123)
    return build_sam3_trunk("tiny").eval()


@pytest.mark.parametrize("nested", [True, False])
def test_synthetic_checkpoint_loads(tmp_path, source_trunk, nested):
    images = random_images()
    path = tmp_path / "sam3.pt"
    fake_sam3_pt(path, source_trunk, nested)
    backbone = make_backbone(checkpoint=str(path)).eval()
    for key, value in source_trunk.state_dict().items():
        assert torch.equal(backbone.trunk.state_dict()[key], value), key
    torch.testing.assert_close(backbone.forward_trunk(images), run_trunk(source_trunk, images))


def test_rope_tables_are_recomputed_for_another_img_size(tmp_path, source_trunk):
    path = tmp_path / "sam3.pt"
    fake_sam3_pt(path, source_trunk)
    trunk = build_sam3_trunk("tiny", img_size=168)
    expected = trunk.blocks[1].attn.freqs_cis.clone()
    dropped = load_sam3_trunk(trunk, str(path))
    assert sorted(dropped) == ["blocks.1.attn.freqs_cis", "blocks.3.attn.freqs_cis"]
    assert torch.equal(trunk.blocks[1].attn.freqs_cis, expected)
    assert torch.equal(trunk.blocks[0].mlp.fc1.weight, source_trunk.blocks[0].mlp.fc1.weight)


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / "nowhere" / "sam3.pt")
    with pytest.raises(CheckpointError, match="nowhere/sam3.pt"):
        make_backbone(checkpoint=path)


def test_file_without_trunk_keys_is_named(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": dict(OTHER_KEYS)}, path)
    with pytest.raises(CheckpointError, match=r"other\.pt.*no SAM3 trunk"):
        make_backbone(checkpoint=str(path))


def test_mismatched_trunk_is_named(tmp_path):
    torch.manual_seed(0)
    wider = build_sam3_trunk("tiny", embed_dim=64, num_heads=4)
    path = tmp_path / "wide.pt"
    fake_sam3_pt(path, wider)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_sam3_trunk(build_sam3_trunk("tiny"), str(path))


def finetune(backbone) -> None:
    """Pretend fine-tuning: move every trainable trunk weight."""
    with torch.no_grad():
        for p in backbone.trunk.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("with_base", [True, False])
def test_exported_trunk_reloads_to_identical_outputs(tmp_path, source_trunk, with_base):
    images = random_images()
    base = tmp_path / "sam3.pt"
    base_state = fake_sam3_pt(base, source_trunk)
    model = make_backbone(checkpoint=str(base)).eval()
    finetune(model)
    training_ckpt = tmp_path / "epoch_1.pth"
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state["bbox_head.conv.weight"] = torch.randn(3, 3)
    torch.save({"state_dict": state, "meta": {"epoch": 1}}, training_ckpt)

    out = tmp_path / "export" / "sam3_ft.pt"
    export = load_tool("export_sam3_trunk")
    argv = [str(training_ckpt), "--out", str(out)] + (["--base", str(base)] if with_base else [])
    assert export.main(argv) == 0

    exported = torch.load(out, map_location="cpu", weights_only=True)
    if with_base:
        inner = exported["model"]
        assert set(inner) == set(base_state)
        assert all(
            inner[k].shape == v.shape and inner[k].dtype == v.dtype for k, v in base_state.items()
        )
        assert all(torch.equal(inner[k], v) for k, v in OTHER_KEYS.items())
    else:
        assert all(k.startswith(SAM3_TRUNK_PREFIX) and "freqs_cis" not in k for k in exported)
    reloaded = make_backbone(checkpoint=str(out)).eval()
    torch.testing.assert_close(
        reloaded.forward_trunk(images), model.forward_trunk(images), rtol=0, atol=0
    )
    assert not torch.equal(reloaded.forward_trunk(images), run_trunk(source_trunk, images))


def test_export_reports_an_unrecognisable_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"neck.weight": torch.zeros(1)}}, bad)
    export = load_tool("export_sam3_trunk")
    assert export.main([str(bad), "--out", str(tmp_path / "x.pt")]) == 1
    assert "bad.pth" in capsys.readouterr().err


def test_trunk_prefix_is_found_or_asked_for(tmp_path, source_trunk):
    """One trunk is found under its prefix; of several, the one under ``...trunk.``; several
    otherwise, or none, are refused with the candidates named."""
    from ds2d2_mm.models.backbones.sam3_trunk import trunk_state_from_training_checkpoint

    trunk = source_trunk.state_dict()

    def checkpoint(name, *prefixes):
        path = tmp_path / name
        state = {p + k: v for p in prefixes for k, v in trunk.items()}
        torch.save({"state_dict": {**state, "bbox_head.conv.weight": torch.zeros(1)}}, path)
        return str(path)

    found, prefix = trunk_state_from_training_checkpoint(checkpoint("one.pth", "teacher.body."))
    assert prefix == "teacher.body." and found.keys() == trunk.keys()
    both = checkpoint("two.pth", "backbone.trunk.", "original.vit.")
    assert trunk_state_from_training_checkpoint(both)[1] == "backbone.trunk."
    assert trunk_state_from_training_checkpoint(both, "original.vit.")[1] == "original.vit."
    with pytest.raises(CheckpointError, match=r"cannot tell where the SAM3 trunk is \(candidate "
                                              r"key prefixes: \['a\.', 'b\.'\]\); pass the prefix"):
        trunk_state_from_training_checkpoint(checkpoint("ab.pth", "a.", "b."))
    with pytest.raises(CheckpointError, match=r"holds no SAM3 trunk under the key prefix 'c\.'"):
        trunk_state_from_training_checkpoint(both, "c.")


def test_export_refuses_a_missing_or_unreadable_base(tmp_path, source_trunk):
    from ds2d2_mm.apis.sam3.export_trunk import export_trunk

    training_ckpt = tmp_path / "epoch_1.pth"
    state = {f"backbone.trunk.{k}": v for k, v in source_trunk.state_dict().items()}
    torch.save({"state_dict": state}, training_ckpt)
    with pytest.raises(CheckpointError, match=r"base SAM3 checkpoint not found: .*nope\.pt"):
        export_trunk(str(training_ckpt), str(tmp_path / "out.pt"), str(tmp_path / "nope.pt"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage\.pt' could not be loaded"):
        export_trunk(str(training_ckpt), str(tmp_path / "out.pt"), str(garbage))
    assert not (tmp_path / "out.pt").exists()


def test_frozen_original_trunk(tmp_path, source_trunk):
    images = random_images()
    base = tmp_path / "sam3.pt"
    fake_sam3_pt(base, source_trunk)
    model = make_backbone(checkpoint=str(base))
    copy_before = make_backbone().build_frozen_trunk()  # no checkpoint: a deep copy
    assert not any(p.requires_grad for p in copy_before.parameters())
    finetune(model)
    teacher = model.build_frozen_trunk()  # from the checkpoint: the original weights
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    torch.testing.assert_close(run_trunk(teacher, images), run_trunk(source_trunk, images))
    assert run_trunk(teacher, images).requires_grad is False
