"""Export of a fine-tuned full SAM3 image model into sam3.pt's layout, and loading it back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sam3_retain_testlib import (
    copy_of,
    perturb_adapter,
    tiny_sam3,
    write_sam3_pt,
    write_training_checkpoint,
)
from sam3_testlib import load_tool, requires_sam3

pytestmark = requires_sam3

ADAPTER = "backbone.vision_backbone.spectral_adapter."


@pytest.fixture(scope="module")
def finetuned():
    """A tiny model with a clearly non-identity spectral adapter."""
    model = copy_of(tiny_sam3(), adapter_hidden=8)
    perturb_adapter(model)
    return model


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))


def _answers(model, image) -> dict[str, np.ndarray]:
    """Trunk + adapter features, and the boxes / scores of a text prompt and a box exemplar."""
    from ds2d2_mm.apis.sam3.output_retention import Sam3PromptRunner, sam3_inference_on

    with sam3_inference_on("cpu"):
        runner = Sam3PromptRunner(model, "cpu", 0.0)
        state = runner.set_image(image)
        features = state["backbone_out"]["vision_features"].clone()
        text = runner.text(state, "ship")
        exemplar = runner.exemplar(state, [10, 10, 50, 40])
    return {"features": features.numpy(), "text_boxes": text[0], "text_scores": text[1],
            "ex_boxes": exemplar[0], "ex_scores": exemplar[1]}


def _assert_same(a: dict, b: dict) -> None:
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_adapter_is_nonlinear_so_it_cannot_be_folded(finetuned):
    adapter = finetuned.backbone.vision_backbone.spectral_adapter
    x, y = torch.randn(2, 1, 32, 8, 8).unbind(0)
    with torch.no_grad():
        residual = [adapter(v) - v for v in (x, y, x + y, 2 * x)]
    assert not torch.allclose(residual[2], residual[0] + residual[1], atol=1e-3)
    assert not torch.allclose(residual[3], 2 * residual[0], atol=1e-3)


def test_round_trip_through_the_helper_gives_identical_outputs(finetuned, image, tmp_path):
    from ds2d2_mm.apis.sam3.export_full import (
        ADAPTER_META_KEY,
        adapter_description,
        export_sam3_image_model,
        load_sam3_with_adapter,
    )

    state = finetuned.state_dict()
    summary = export_sam3_image_model(
        state, str(tmp_path / "out.pt"), adapter=adapter_description(state, "tiny")
    )
    assert summary.adapter_identity is False and len(summary.adapter_keys) == len(
        [k for k in state if k.startswith(ADAPTER)]
    )
    raw = torch.load(tmp_path / "out.pt", weights_only=True)
    assert raw[ADAPTER_META_KEY]["config"] == {"hidden_channels": 8}
    assert all(k.startswith(("detector.", "tracker.")) for k in raw["model"])
    loaded = load_sam3_with_adapter(str(tmp_path / "out.pt"))  # arch read from the file
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    _assert_same(_answers(loaded, image), _answers(finetuned, image))


def test_sam3s_own_loader_reports_only_the_adapter_keys(finetuned, image, tmp_path):
    """sam3's model_builder._load_checkpoint on the exported file, into the same architecture
    without the adapter: every weight loads, the adapter's keys are the only unexpected ones."""
    from sam3.model_builder import _load_checkpoint

    from ds2d2_mm.apis.sam3.export_full import adapter_description, export_sam3_image_model

    state = finetuned.state_dict()
    export_sam3_image_model(state, str(tmp_path / "out.pt"),
                            adapter=adapter_description(state, "tiny"))
    plain = tiny_sam3(seed=7)
    seen = {}
    load = plain.load_state_dict

    def recording_load(state_dict, strict=True):
        seen["result"] = load(state_dict, strict=strict)
        return seen["result"]

    plain.load_state_dict = recording_load
    _load_checkpoint(plain, str(tmp_path / "out.pt"))
    del plain.load_state_dict
    assert seen["result"].missing_keys == []
    adapter_keys = sorted(k for k in state if k.startswith(ADAPTER))
    assert sorted(seen["result"].unexpected_keys) == adapter_keys
    for key, value in plain.state_dict().items():
        assert torch.equal(value, state[key]), key
    # what a plain-sam3 user gets: the fine-tuned weights without the adapter, which differs
    # from the fine-tuned model unless the adapter is the identity
    plain_out, tuned_out = _answers(plain.eval(), image), _answers(finetuned, image)
    assert not np.allclose(plain_out["features"], tuned_out["features"])
    identity = copy_of(tiny_sam3(), adapter_hidden=8)
    _assert_same(_answers(tiny_sam3(), image), _answers(identity, image))


def test_export_onto_the_original_sam3_pt(finetuned, tmp_path):
    from ds2d2_mm.apis.sam3.export_full import adapter_description, export_sam3_image_model

    base_model = tiny_sam3()
    tracker = {"tracker.maskmem_tpos_enc": torch.ones(3, 2),
               "detector.backbone.vision_backbone.sam2_convs.0.weight": torch.ones(2)}
    write_sam3_pt(base_model, tmp_path / "sam3.pt", extra=tracker)
    raw = torch.load(tmp_path / "sam3.pt", weights_only=True)
    raw["model"] = {k: v.half() if "trunk.blocks.0." in k and v.is_floating_point() else v
                    for k, v in raw["model"].items()}
    raw["info"] = "released"
    torch.save(raw, tmp_path / "sam3.pt")
    state = finetuned.state_dict()
    summary = export_sam3_image_model(
        state, str(tmp_path / "out.pt"), base=str(tmp_path / "sam3.pt"),
        adapter=adapter_description(state, "tiny"),
    )
    assert sorted(summary.kept_from_base) == sorted(tracker)
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["info"] == "released"  # the base's other top-level entries are kept
    assert set(out["model"]) == set(raw["model"]) | set(summary.adapter_keys)
    key = "detector.backbone.vision_backbone.trunk.blocks.0.attn.qkv.weight"
    assert out["model"][key].dtype == torch.float16  # the base's dtype
    other = "detector.backbone.vision_backbone.trunk.blocks.1.attn.qkv.weight"
    assert torch.equal(out["model"][other], state[other[len("detector."):]])
    assert torch.equal(out["model"]["tracker.maskmem_tpos_enc"], torch.ones(3, 2))
    summary.describe()


def test_export_errors(finetuned, tmp_path):
    from ds2d2_mm.apis.sam3.export_full import export_sam3_image_model, load_sam3_with_adapter
    from ds2d2_mm.utils.errors import CheckpointError

    state = finetuned.state_dict()
    (tmp_path / "out.pt").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="out.pt.*--force"):
        export_sam3_image_model(state, str(tmp_path / "out.pt"))
    with pytest.raises(CheckpointError, match="base SAM3 checkpoint not found: .*nope.pt"):
        export_sam3_image_model(state, str(tmp_path / "o.pt"), base=str(tmp_path / "nope.pt"))
    # a base of another size: the mismatching keys are named
    small = {k: v[..., :1] if k.endswith("qkv.weight") else v for k, v in state.items()}
    torch.save({"model": {f"detector.{k}": v for k, v in small.items()}}, tmp_path / "base.pt")
    with pytest.raises(CheckpointError, match=r"does not match the base.*qkv.weight: model"):
        export_sam3_image_model(state, str(tmp_path / "o.pt"), base=str(tmp_path / "base.pt"))
    # a file lacking keys cannot be loaded whole by the helper
    export_sam3_image_model(
        {k: v for k, v in state.items() if "dot_prod_scoring" not in k}, str(tmp_path / "p.pt")
    )
    with pytest.raises(CheckpointError, match=r"(?s)p.pt.*missing keys: dot_prod_scoring") as err:
        load_sam3_with_adapter(str(tmp_path / "p.pt"), arch="tiny")
    assert "unexpected" not in str(err.value)  # the adapter was read off its weights


def test_training_checkpoint_errors(tmp_path):
    from ds2d2_mm.apis.sam3.export_full import image_state_from_training_checkpoint
    from ds2d2_mm.utils.errors import CheckpointError

    torch.save({"state_dict": {"backbone.conv.weight": torch.zeros(1)}}, tmp_path / "r.pth")
    with pytest.raises(CheckpointError, match="r.pth.*cannot tell where the SAM3 image model"):
        image_state_from_training_checkpoint(str(tmp_path / "r.pth"))
    with pytest.raises(CheckpointError, match="training checkpoint not found"):
        image_state_from_training_checkpoint(str(tmp_path / "none.pth"))


def test_export_tool_end_to_end(finetuned, image, tmp_path, capsys):
    from ds2d2_mm.apis.sam3.export_full import load_sam3_with_adapter

    write_training_checkpoint(finetuned, tmp_path / "epoch_1.pth")
    write_sam3_pt(tiny_sam3(), tmp_path / "sam3.pt")
    (tmp_path / "cfg.py").write_text("model = dict(type='Sam3PromptedDetector', arch='tiny')\n")
    tool = load_tool("export_sam3_full")
    argv = [str(tmp_path / "epoch_1.pth"), "--out", str(tmp_path / "sam3_ft.pt"),
            "--base", str(tmp_path / "sam3.pt"), "--config", str(tmp_path / "cfg.py")]
    assert tool.main(argv) == 0
    printed = capsys.readouterr().out
    assert "spectral adapter: 18 keys under 'detector.backbone.vision_backbone." in printed
    assert "not the identity" in printed
    assert tool.main(argv) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert tool.main([*argv, "--force"]) == 0
    loaded = load_sam3_with_adapter(str(tmp_path / "sam3_ft.pt"))
    _assert_same(_answers(loaded, image), _answers(finetuned, image))
