"""The DIOR configs train and evaluate on exactly what the DIOR converter writes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ds2d2_testlib import REPO

sys.path.insert(0, str(REPO / "tests" / "datasets"))


@pytest.mark.slow
def test_dior_converter_output_trains_the_dior_student_config(tmp_path):
    from dataset_fixtures import HBB_DIR, voc_xml, write_image

    from ds2d2_mm.datasets import convert_dior
    from ds2d2_mm.tooling.pipeline import data_root_options

    root = tmp_path / "DIOR"
    for split, name, cls in (("trainval", "00001", "airplane"), ("trainval", "00002", "ship"),
                             ("test", "00003", "vehicle")):
        write_image(root / f"JPEGImages-{split}" / f"{name}.jpg", 96, 96, seed=int(name))
        (root / HBB_DIR).mkdir(parents=True, exist_ok=True)
        (root / HBB_DIR / f"{name}.xml").write_text(
            voc_xml([(cls, (10, 12, 60, 70), 0), ("Vehicle", (70, 70, 90, 88), 0)], (96, 96)))
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("00001\n")
    (main / "val.txt").write_text("00002\n")
    (main / "test.txt").write_text("00003\n")
    convert_dior(root, root / "annotations", progress=False)

    opts = [*data_root_options(root, "annotations/test.json"), "train_cfg.max_epochs=1",
            "model.backbone.init_cfg=None",
            # 128 px instead of DIOR's 800: what is checked does not depend on the size
            "train_dataloader.dataset.pipeline.2.scale=(128,128)",
            "val_dataloader.dataset.pipeline.1.scale=(128,128)",
            "train_dataloader.num_workers=0",
            "train_dataloader.persistent_workers=False", "val_dataloader.num_workers=0",
            "val_dataloader.persistent_workers=False", "test_dataloader.num_workers=0",
            "test_dataloader.persistent_workers=False"]
    wd = tmp_path / "wd"
    out = subprocess.run([sys.executable, "tools/train.py", "configs/ds2d2/retina_r18_dior.py",
                          "--work-dir", str(wd), "--cfg-options", *opts],
                         cwd=REPO, capture_output=True, text=True)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "Epoch(train) [1][1/1]" in log
    assert "Epoch(val) [1][1/1]" in log
    assert (wd / "epoch_1.pth").is_file()
