"""Retention measured on SAM3's own outputs (tiny full SAM3 image models on the CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sam3_retain_testlib import (
    copy_of,
    perturb_trunk,
    tiny_sam3,
    write_config,
    write_images,
    write_prompts,
    write_sam3_pt,
    write_training_checkpoint,
)
from sam3_testlib import load_tool, requires_sam3

pytestmark = requires_sam3

#: The tiny models' scores lie around 0.25-0.31: the reference takes most of their detections.
REF_SCORE_THR = 0.25


@pytest.fixture(scope="module")
def models():
    """(original, unchanged copy, copy with a perturbed ViT trunk)."""
    original = tiny_sam3()
    perturbed = copy_of(original)
    perturb_trunk(perturbed)
    return original, copy_of(original), perturbed


@pytest.fixture(scope="module")
def images():
    from PIL import Image

    rng = np.random.default_rng(0)
    return [(f"img{i}.png", Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)))
            for i in range(3)]


def _prompts():
    from ds2d2_mm.apis.sam3.retention_prompts import PromptSet

    return PromptSet(
        text=["ship", "airplane"],
        boxes={"img0.png": [[10, 10, 50, 40]], "img1.png": [[30, 20, 100, 80]]},
        points={"img0.png": [[[30.0, 25.0, 1.0]]]},
    )


def _compare(finetuned, original, images, prompts=None):
    from ds2d2_mm.apis.sam3.output_retention import (
        Sam3PromptRunner,
        compare_sam3_outputs,
        sam3_inference_on,
    )

    with sam3_inference_on("cpu"):
        return compare_sam3_outputs(
            Sam3PromptRunner(finetuned, "cpu", 0.0), Sam3PromptRunner(original, "cpu", 0.0),
            images, prompts or _prompts(), ref_score_thr=REF_SCORE_THR,
        )


@pytest.fixture(scope="module")
def unchanged_report(models, images):
    original, same, _ = models
    return _compare(same, original, images)


def test_unchanged_model_keeps_everything(unchanged_report):
    report = unchanged_report
    text, exemplar = report.kinds["text"], report.kinds["box_exemplar"]
    assert text.value == pytest.approx(1.0) and text.details["ap50"] == pytest.approx(1.0)
    assert exemplar.value == pytest.approx(1.0)
    assert text.num_prompts == 6 and exemplar.num_prompts == 2  # 2 texts x 3 images; 2 boxes
    assert text.details["num_reference"] > 10
    assert set(text.details["per_query"]) == {"ship", "airplane"}
    # the tiny build has no instance predictor (sam3 builds it at full size, on CUDA only)
    assert report.kinds["box_instance"].value is None
    assert "instance predictor" in report.kinds["box_instance"].note
    assert report.passed and "PASS" in report.table()


def test_perturbed_trunk_fails(models, images):
    original, _, perturbed = models
    report = _compare(perturbed, original, images)
    assert report.kinds["text"].value < 0.95
    assert report.kinds["box_exemplar"].value < 0.95
    assert not report.passed
    assert "FAIL" in report.table().splitlines()[2]  # the text row


def test_instance_kinds_use_mask_iou(models, images, monkeypatch):
    """The mask IoU bookkeeping of the box / point instance kinds, with the instance predictor's
    answers replaced by fixed masks (sam3 builds that predictor at full size on CUDA only)."""
    from ds2d2_mm.apis.sam3.output_retention import Sam3PromptRunner

    original, same, _ = models
    mask = np.zeros((90, 120), bool)
    mask[10:40, 10:50] = True
    shifted = np.roll(mask, 10, axis=1)  # IoU 30 / 50 of the box area: 0.6

    def answer(self, state, box=None, points=None):
        return mask if self.model is original else shifted

    monkeypatch.setattr(Sam3PromptRunner, "has_instance_predictor", property(lambda self: True))
    monkeypatch.setattr(Sam3PromptRunner, "instance", answer)
    report = _compare(same, original, images)
    for kind, count in (("box_instance", 2), ("point_instance", 1)):
        result = report.kinds[kind]
        assert result.num_prompts == count
        assert result.value == pytest.approx(0.6)
        assert result.verdict(0.95) == "FAIL"
    assert set(report.kinds["box_instance"].details["per_prompt"]) == {"img0.png#box0",
                                                                      "img1.png#box0"}
    assert not report.passed


def test_prompt_outside_its_image_is_an_error(models, images):
    from ds2d2_mm.apis.sam3.retention_prompts import PromptError, PromptSet

    original, same, _ = models
    with pytest.raises(PromptError, match=r"boxes\['img0.png'\]\[0\].*outside the 120x90"):
        _compare(same, original, images, PromptSet(boxes={"img0.png": [[0, 0, 130, 50]]}))


def test_json_report(unchanged_report, tmp_path):
    from ds2d2_mm.utils.io import atomic_write_json

    atomic_write_json(tmp_path / "r.json", unchanged_report.to_json(), indent=2)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is True
    assert data["kinds"]["text"]["metric"] == "box AP"
    assert data["kinds"]["box_exemplar"]["sam3_path"].startswith("Sam3Processor.add_geometric")
    assert data["kinds"]["point_instance"]["verdict"] == "n/a"


# ---------------------------------------------------------------- the tool end to end
@pytest.fixture(scope="module")
def tool_files(tmp_path_factory, models):
    original, _, perturbed = models
    root = tmp_path_factory.mktemp("retention_tool")
    write_sam3_pt(original, root / "sam3.pt")
    same = copy_of(original, adapter_hidden=8)  # as the detector trains it: identity at start
    write_training_checkpoint(same, root / "epoch_1.pth")
    bad = copy_of(perturbed, adapter_hidden=8)
    write_training_checkpoint(bad, root / "perturbed.pth")
    write_images(root / "images", 3)
    write_config(root / "sam3_tiny.py", root / "sam3.pt")
    write_prompts(root / "prompts.json")
    return root


def _argv(root, checkpoint, *extra):
    return [str(root / "sam3_tiny.py"), str(root / checkpoint), "--mode", "outputs",
            "--images", str(root / "images"), "--prompts", str(root / "prompts.json"),
            "--ref-score-thr", str(REF_SCORE_THR), "--min-score", "0", "--device", "cpu",
            *extra]


@pytest.mark.parametrize(("checkpoint", "code"), [("epoch_1.pth", 0), ("perturbed.pth", 1)])
def test_tool_end_to_end(tool_files, capsys, checkpoint, code):
    tool = load_tool("sam3_retention")
    out = tool_files / f"{checkpoint}.json"
    assert tool.main(_argv(tool_files, checkpoint, "--out", str(out))) == code
    printed = capsys.readouterr()
    assert ("PASS" if code == 0 else "FAIL") in printed.out.splitlines()[-3]
    assert "box_exemplar" in printed.out and "SAM3 outputs" in printed.err  # the progress bar
    data = json.loads(out.read_text())
    assert data["passed"] is (code == 0)
    assert data["images"] == ["img0.png", "img1.png", "img2.png"]
    assert data["inputs"]["original"].endswith("sam3.pt")


def test_tool_default_report_path_and_num(tool_files, capsys):
    tool = load_tool("sam3_retention")
    assert tool.main(_argv(tool_files, "epoch_1.pth", "--num", "1")) == 0
    assert "1 box / point prompts on images beyond --num 1 not run" in capsys.readouterr().out
    data = json.loads((tool_files / "epoch_1_output_retention.json").read_text())
    assert data["passed"] and data["images"] == ["img0.png"]
    assert data["kinds"]["box_exemplar"]["num_prompts"] == 1


def test_tool_bad_inputs(tool_files, tmp_path, capsys):
    tool = load_tool("sam3_retention")

    def error(argv):
        assert tool.main(argv) == 2
        return capsys.readouterr().err

    argv = _argv(tool_files, "epoch_1.pth")
    missing = list(argv)
    missing[missing.index("--prompts") + 1] = str(tmp_path / "nope.json")
    assert "prompt file not found" in error(missing) and "nope.json" in error(missing)
    no_prompts = [a for a in argv if a not in ("--prompts", str(tool_files / "prompts.json"))]
    assert "needs --prompts" in error(no_prompts)

    broken = tmp_path / "images"
    write_images(broken, 1)
    (broken / "img1.png").write_bytes(b"not a png")
    bad_folder = list(argv)
    bad_folder[bad_folder.index("--images") + 1] = str(broken)
    assert "img1.png: cannot be read as an image" in error(bad_folder)

    (tmp_path / "p.json").write_text(json.dumps({"boxes": {"other.png": [[0, 0, 5, 5]]}}))
    other = list(argv)
    other[other.index("--prompts") + 1] = str(tmp_path / "p.json")
    assert "not in" in error(other) and "other.png" in error(other)

    state = torch.load(tool_files / "epoch_1.pth", weights_only=False)
    state["state_dict"]["sam3.transformer.decoder.extra.weight"] = torch.zeros(2)
    weight = "sam3.dot_prod_scoring.prompt_proj.weight"
    state["state_dict"][weight] = state["state_dict"][weight][:, :4]
    torch.save(state, tmp_path / "bad.pth")
    text = error(_argv(tool_files, "epoch_1.pth")[:1] + [str(tmp_path / "bad.pth")]
                 + _argv(tool_files, "epoch_1.pth")[2:])
    assert "bad.pth" in text and "do not fit" in text
    assert "transformer.decoder.extra.weight" in text and "dot_prod_scoring.prompt_proj" in text

    features_mode = _argv(tool_files, "epoch_1.pth")
    features_mode.remove("outputs")
    features_mode.remove("--mode")
    assert "belong to --mode outputs" in error(features_mode)


def test_tool_on_an_exported_file(tool_files, capsys):
    """The fine-tuned model given as a sam3.pt-style export (tools/export_sam3_full.py)."""
    export = load_tool("export_sam3_full")
    exported = tool_files / "sam3_finetuned.pt"
    argv = [str(tool_files / "epoch_1.pth"), "--out", str(exported),
            "--base", str(tool_files / "sam3.pt"), "--force"]
    assert export.main(argv) == 0
    tool = load_tool("sam3_retention")
    out = tool_files / "exported.json"
    assert tool.main([*_argv(tool_files, exported.name, "--exported", "--out", str(out))]) == 0
    data = json.loads(out.read_text())
    assert data["passed"] and data["inputs"]["exported"] is True
    assert data["kinds"]["text"]["value"] == pytest.approx(1.0)


def test_tool_with_prompts_from_coco(tool_files, capsys):
    coco = {
        "images": [{"id": 1, "file_name": "images/img0.png"}, {"id": 2, "file_name": "img2.png"}],
        "categories": [{"id": 1, "name": "storagetank"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 40, 30]},
                        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [60, 40, 30, 30]}],
    }
    (tool_files / "ann.json").write_text(json.dumps(coco))
    argv = _argv(tool_files, "epoch_1.pth", "--out", str(tool_files / "coco.json"))
    argv[argv.index("--prompts"):argv.index("--prompts") + 2] = ["--coco",
                                                                  str(tool_files / "ann.json")]
    assert load_tool("sam3_retention").main(argv) == 0
    data = json.loads((tool_files / "coco.json").read_text())
    assert list(data["kinds"]["text"]["per_query"]) == ["storagetank"]
    assert set(data["kinds"]["box_exemplar"]["per_query"]) == {"img0.png#box0", "img2.png#box0"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="sam3 builds its instance predictor "
                    "(the tracker) at full size on CUDA only")
def test_instance_prompts_on_full_size_sam3_gpu():
    """SAM3's SAM1-style instance predictor answers box and point prompts for both models:
    identical models agree (mask IoU 1.0). Random full-size weights, one small image."""
    from PIL import Image

    from ds2d2_mm.apis.sam3.output_retention import Sam3PromptRunner, compare_sam3_outputs
    from ds2d2_mm.apis.sam3.retention_prompts import PromptSet
    from ds2d2_mm.models.detectors.sam3_prompted import build_sam3_image_model
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import BpeVocabNotFoundError

    torch.manual_seed(0)
    try:
        model = build_sam3_image_model("sam3", enable_inst_interactivity=True).eval().cuda()
    except BpeVocabNotFoundError as exc:
        pytest.skip(f"no CLIP BPE vocabulary: {exc}")
    runner = Sam3PromptRunner(model, "cuda", 0.05)
    assert runner.has_instance_predictor
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8))
    prompts = PromptSet(boxes={"a.png": [[20, 30, 120, 110]]},
                        points={"a.png": [[[60.0, 70.0, 1.0]], [[60.0, 70.0, 1.0],
                                                               [150.0, 20.0, 0.0]]]})
    report = compare_sam3_outputs(runner, runner, [("a.png", image)], prompts)
    assert report.kinds["box_instance"].num_prompts == 1
    assert report.kinds["point_instance"].num_prompts == 2
    assert report.kinds["box_instance"].value == pytest.approx(1.0)
    assert report.kinds["point_instance"].value == pytest.approx(1.0)


@pytest.mark.parametrize(("checkpoint", "code"), [("epoch_1.pth", 0), ("perturbed.pth", 1)])
def test_features_mode_on_a_full_sam3_config(tool_files, capsys, checkpoint, code):
    """The fast proxy on the same config: the ViT trunks' outputs (cosine, linear CKA)."""
    argv = [str(tool_files / "sam3_tiny.py"), str(tool_files / checkpoint),
            "--images", str(tool_files / "images"), "--device", "cpu"]
    assert load_tool("sam3_retention").main(argv) == code
    assert ("PASS" if code == 0 else "FAIL") in capsys.readouterr().out
