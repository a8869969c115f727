"""The retention runs' inputs (ds2d2_mm.apis.sam3.retention_run): images, prompts, build args.

The runs themselves are exercised through the command in test_sam3_retention.py and
test_sam3_output_retention.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ds2d2_mm.apis.sam3.retention_prompts import PromptError
from ds2d2_mm.apis.sam3.retention_run import (
    SAM3_INPUT_MEAN_STD,
    image_sizes,
    list_images,
    load_image,
    prepare_prompts,
    read_rgb,
    sam3_build_args,
)
from ds2d2_mm.utils.errors import ImageError


def write_images(folder, sizes=((40, 30), (20, 50), (16, 16))):
    """PNG images img0.png ... of the given (width, height), plus a file that is no image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_images_are_listed_in_name_order_and_read(tmp_path):
    folder = write_images(tmp_path / "images")
    paths = list_images(str(folder), 2)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["img0.png", "img1.png"]
    assert image_sizes(paths) == {"img0.png": (40, 30), "img1.png": (20, 50)}
    rgb = read_rgb(paths[0])
    assert rgb.mode == "RGB" and rgb.size == (40, 30)
    # longest side to 80 px, aspect kept, normalised as SAM3 normalises (mean = std = 127.5)
    half = torch.full((3,), SAM3_INPUT_MEAN_STD)
    image = load_image(paths[0], 80, half, half)
    assert image.shape == (1, 3, 60, 80)
    assert image.min() >= -1 and image.max() <= 1
    pixels = np.asarray(Image.open(paths[0]).resize((80, 60), Image.BILINEAR), dtype=np.float32)
    torch.testing.assert_close(image[0].mean((1, 2)),
                               torch.from_numpy(pixels.mean((0, 1)) / 127.5 - 1), atol=0.02,
                               rtol=0)  # fmt: skip


def test_image_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found: .*nowhere"):
        list_images(str(tmp_path / "nowhere"), 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no images \(.jpg.*in .*empty"):
        list_images(str(tmp_path / "empty"), 1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="broken.png: cannot be read as an image"):
        image_sizes([str(broken)])
    with pytest.raises(ImageError, match="broken.png: cannot be read as an image"):
        read_rgb(str(broken))


def test_prompts_are_kept_for_the_images_run(tmp_path):
    folder = write_images(tmp_path / "images")
    prompt_file = tmp_path / "prompts.json"
    prompt_file.write_text(json.dumps({
        "text": ["ship"],
        "boxes": {"img0.png": [[1, 1, 30, 20]], "img2.png": [[0, 0, 8, 8], [2, 2, 9, 9]]},
        "points": {"img1.png": [[[5, 5, 1]]]},
    }))  # fmt: skip
    paths, prepared = prepare_prompts(str(folder), 2, str(prompt_file))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["img0.png", "img1.png"]
    assert prepared.source == str(prompt_file)
    assert prepared.skipped == 2  # img2.png's two boxes: beyond the 2 images run
    assert prepared.prompts.text == ["ship"]
    assert prepared.prompts.boxes == {"img0.png": [[1, 1, 30, 20]]}
    assert prepared.prompts.points == {"img1.png": [[[5, 5, 1]]]}


def test_prompts_that_do_not_fit_the_images_are_refused(tmp_path):
    folder = write_images(tmp_path / "images")

    def prompts(raw):
        path = tmp_path / "p.json"
        path.write_text(json.dumps(raw))
        return str(path)

    with pytest.raises(PromptError, match=r"not in .*images.*\['other.png'\]"):
        prepare_prompts(str(folder), 3, prompts({"boxes": {"other.png": [[0, 0, 5, 5]]}}))
    with pytest.raises(PromptError, match=r"boxes\['img2.png'\]\[0\].*outside the 16x16 image"):
        prepare_prompts(str(folder), 3, prompts({"boxes": {"img2.png": [[0, 0, 17, 5]]}}))
    with pytest.raises(PromptError, match="needs a prompt file or a COCO annotation file"):
        prepare_prompts(str(folder), 3)


def test_prompts_from_coco_ask_for_the_class_prompts(tmp_path):
    folder = write_images(tmp_path / "images")
    coco = tmp_path / "ann.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "img0.png"}],
        "categories": [{"id": 1, "name": "storagetank"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 8]}],
    }))  # fmt: skip
    _, prepared = prepare_prompts(str(folder), 3, coco=str(coco),
                                  class_prompts={"storagetank": "storage tank"})  # fmt: skip
    assert prepared.prompts.text == ["storage tank"] and prepared.source == str(coco)
    assert prepared.prompts.boxes == {"img0.png": [[2, 2, 12, 10]]} and prepared.skipped == 0


def test_build_args_of_a_full_sam3_config():
    from mmengine.config import ConfigDict

    model = ConfigDict(type="Sam3PromptedDetector", arch=dict(img_size=112), bpe_path="v.gz",
                       img_size=224, checkpoint="sam3.pt")  # fmt: skip
    args = sam3_build_args(model, instance=True)
    assert args == dict(arch={"img_size": 112}, bpe_path="v.gz", enable_inst_interactivity=True,
                        img_size=224)  # fmt: skip
    assert type(args["arch"]) is dict  # a plain dict, as the exported file stores it
    assert sam3_build_args(ConfigDict(arch="tiny"))["enable_inst_interactivity"] is False
