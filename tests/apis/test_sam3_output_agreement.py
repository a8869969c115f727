"""Prompt files and the agreement metrics of the SAM3 output-retention check (no sam3 needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ds2d2_mm.apis.sam3.agreement import Detections, box_ap_against_reference, mask_iou
from ds2d2_mm.apis.sam3.retention_prompts import (
    PromptError,
    load_prompt_file,
    prompt_set_from_dict,
    prompts_from_coco,
)


def _dets(image: str, query: int, boxes: list, scores: list) -> Detections:
    return Detections(image, query, np.asarray(boxes, float).reshape(-1, 4),
                      np.asarray(scores, float), 100, 120)


REF = [
    _dets("a.png", 0, [[10, 10, 40, 40], [50, 50, 90, 80], [5, 60, 20, 90]], [0.9, 0.8, 0.2]),
    _dets("b.png", 0, [[0, 0, 30, 30]], [0.7]),
    _dets("a.png", 1, [[60, 10, 100, 40]], [0.95]),
    _dets("b.png", 1, [], []),
]


def test_ap_of_identical_predictions_is_one_and_low_scores_do_not_count():
    result = box_ap_against_reference(REF, REF, ref_score_thr=0.5, num_queries=2)
    assert result.ap == pytest.approx(1.0) and result.ap50 == pytest.approx(1.0)
    assert result.num_reference == 4  # the 0.2 box is no reference object
    assert result.num_predicted == 5
    assert result.per_query == {0: pytest.approx(1.0), 1: pytest.approx(1.0)}


def test_ap_drops_for_moved_missing_or_outranking_false_boxes():
    moved = [_dets(d.image, d.query, d.boxes + 6.0, d.scores) for d in REF]
    assert box_ap_against_reference(REF, moved, 0.5, 2).ap < 0.7
    missing = [REF[0], REF[1], _dets("a.png", 1, [], []), REF[3]]
    result = box_ap_against_reference(REF, missing, 0.5, 2)
    assert result.per_query[1] == 0.0 and result.ap == pytest.approx(0.5)
    # a confident false box above the true one: precision 1/2 at the first recall point
    false_first = [REF[0], REF[1], _dets("a.png", 1, [[60, 10, 100, 40], [0, 70, 20, 99]],
                                         [0.5, 0.99]), REF[3]]
    assert box_ap_against_reference(REF, false_first, 0.5, 2).per_query[1] < 0.6


def test_ap_without_reference_objects_is_not_measured_and_without_predictions_is_zero():
    empty = [_dets("a.png", 0, [[1, 1, 9, 9]], [0.1])]
    assert box_ap_against_reference(empty, empty, 0.5, 1).ap is None
    nothing = [_dets(d.image, d.query, [], []) for d in REF]
    assert box_ap_against_reference(REF, nothing, 0.5, 2).ap == 0.0


def test_mask_iou():
    a = np.zeros((4, 5), bool)
    b = a.copy()
    assert mask_iou(a, b) == 1.0  # both empty: they agree
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(5 / 15)
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(a, np.zeros((5, 4), bool))


def test_prompt_file_json_and_yaml(tmp_path):
    raw = {"text": ["ship", "airplane"], "boxes": {"a.png": [[1, 2, 30, 40]]},
           "points": {"a.png": [[[5, 6]], [[7, 8], [9, 9, 0]]]}}
    (tmp_path / "p.json").write_text(json.dumps(raw))
    prompts = load_prompt_file(str(tmp_path / "p.json"))
    assert prompts.text == ["ship", "airplane"]
    assert prompts.boxes == {"a.png": [[1.0, 2.0, 30.0, 40.0]]}
    assert prompts.points["a.png"] == [[[5.0, 6.0, 1.0]], [[7.0, 8.0, 1.0], [9.0, 9.0, 0.0]]]
    assert prompts.image_names() == ["a.png"]
    (tmp_path / "p.yaml").write_text("text: [ship]\nboxes:\n  b.png: [[0, 0, 5, 5]]\n")
    assert load_prompt_file(str(tmp_path / "p.yaml")).boxes == {"b.png": [[0.0, 0.0, 5.0, 5.0]]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"text": "ship"}, "'text' must be a list"),
        ({"text": ["ship", ""]}, r"text\[1\]"),
        ({"text": ["a", "a"]}, "duplicates"),
        ({"txt": ["a"]}, "unknown keys"),
        ({"boxes": {"a.png": [[1, 2, 3]]}}, r"boxes\['a.png'\]\[0\].*4 numbers"),
        ({"boxes": {"a.png": [[5, 5, 1, 9]]}}, "is empty"),
        ({"boxes": [[1, 2, 3, 4]]}, "must map image file names"),
        ({"points": {"a.png": [[1, 2]]}}, r"points\['a.png'\]\[0\]"),
        ({"points": {"a.png": [[[1, 2, 3]]]}}, "label must be 0 or 1"),
        ({"text": []}, "holds no prompt"),
    ],
)
def test_malformed_prompts_name_the_key(raw, message):
    with pytest.raises(PromptError, match=message):
        prompt_set_from_dict(raw, "prompts.json")


def test_prompt_file_missing_or_unparsable(tmp_path):
    with pytest.raises(PromptError, match="prompt file not found: .*nope.json"):
        load_prompt_file(str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{text: ")
    with pytest.raises(PromptError, match="bad.json.*could not be parsed"):
        load_prompt_file(str(tmp_path / "bad.json"))


def test_prompts_from_coco(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "test/a.png"}, {"id": 2, "file_name": "b.png"}],
        "categories": [{"id": 2, "name": "ship"}, {"id": 1, "name": "airplane"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 30, 40]},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [5, 5, 2, 2], "iscrowd": 1},
            {"id": 4, "image_id": 2, "category_id": 2, "bbox": [1, 1, 0, 5]},
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    prompts = prompts_from_coco(str(path), max_per_image=5)
    assert prompts.text == ["airplane", "ship"]
    assert prompts.boxes == {"a.png": [[20.0, 20.0, 50.0, 60.0], [0.0, 0.0, 10.0, 10.0]]}
    assert prompts.points == {"a.png": [[[35.0, 40.0, 1.0]], [[5.0, 5.0, 1.0]]]}
    assert prompts_from_coco(str(path), max_per_image=1).boxes["a.png"] == [[20, 20, 50, 60]]
    named = prompts_from_coco(str(path), class_prompts={"airplane": "plane", "ship": "plane"})
    assert named.text == ["plane"]  # mapped, duplicates dropped
    coco["annotations"].append({"id": 5, "image_id": 9, "bbox": [0, 0, 1, 1]})
    path.write_text(json.dumps(coco))
    with pytest.raises(PromptError, match=r"annotations\[4\]"):
        prompts_from_coco(str(path))
    with pytest.raises(PromptError, match="not found"):
        prompts_from_coco(str(tmp_path / "missing.json"))
