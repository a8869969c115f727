"""The registered COCO dataset classes load the converters' json files."""

from __future__ import annotations

import ast
from pathlib import Path

from mmdet.registry import DATASETS

from ds2d2_mm.datasets import (
    DIOR_CLASSES,
    SYNTHETIC_CLASSES,
    DIORDataset,
    SyntheticAerialDataset,
    convert_dior,
)
from ds2d2_mm.tooling.synthetic import generate_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]


def test_registered_in_mmdet() -> None:
    assert DATASETS.get("DIORDataset") is DIORDataset
    assert DATASETS.get("SyntheticAerialDataset") is SyntheticAerialDataset
    assert DIORDataset.METAINFO["classes"] == DIOR_CLASSES
    assert len(DIORDataset.METAINFO["palette"]) == 20
    assert SyntheticAerialDataset.METAINFO["classes"] == SYNTHETIC_CLASSES


def test_dior_dataset_loads_converted_json(dior_root: Path, tmp_path: Path) -> None:
    convert_dior(dior_root, dior_root / "annotations", ["trainval"], progress=False)
    dataset = DATASETS.build(dict(type="DIORDataset", data_root=str(dior_root),
                                  ann_file="annotations/trainval.json",
                                  data_prefix=dict(img=""), pipeline=[], test_mode=True))
    assert len(dataset) == 2 and dataset.metainfo["classes"] == DIOR_CLASSES
    first = dataset.get_data_info(0)
    assert Path(first["img_path"]) == dior_root / "JPEGImages-trainval" / "00001.jpg"
    assert [i["bbox_label"] for i in first["instances"]] == [0, 18, 7]
    assert first["instances"][0]["bbox"] == [5, 6, 20, 30]


def test_synthetic_dataset_loads_generated_json(tmp_path: Path) -> None:
    summary = generate_synthetic_dataset(tmp_path, num_train=3, num_val=2, img_size=96)
    for split, count in (("train", 3), ("val", 2)):
        dataset = DATASETS.build(dict(type="SyntheticAerialDataset", data_root=str(tmp_path),
                                      ann_file=f"annotations/{split}.json",
                                      data_prefix=dict(img=""), pipeline=[], test_mode=True))
        assert len(dataset) == count
        assert dataset.metainfo["classes"] == SYNTHETIC_CLASSES
        instances = [dataset.get_data_info(i)["instances"] for i in range(count)]
        assert sum(map(len, instances)) == summary["splits"][split]["objects"]
        assert all(Path(dataset.get_data_info(i)["img_path"]).is_file() for i in range(count))


def test_datasets_modules_do_not_import_mmrotate_at_import_time() -> None:
    """mmrotate is optional: no module of the subpackage imports it at module level."""
    offenders = []
    for path in sorted((REPO / "ds2d2_mm" / "datasets").glob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module-level statements only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "mmrotate"]
    assert offenders == []


def test_corrupt_image_in_a_batch_names_the_file_and_index(tmp_path: Path) -> None:
    """Through a data loader worker, a corrupt image is reported with its path and index."""
    import pytest
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from ds2d2_mm.datasets import DatasetError

    root = tmp_path / "syn"
    generate_synthetic_dataset(root, num_train=4, num_val=1, img_size=64, seed=0)
    dataset = DATASETS.build(dict(
        type="SyntheticAerialDataset", data_root=str(root), ann_file="annotations/train.json",
        data_prefix=dict(img=""),
        pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                  dict(type="PackDetInputs")]))
    bad = Path(dataset.get_data_info(2)["img_path"])
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    loader = DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=pseudo_collate)
    with pytest.raises(DatasetError) as err:
        for _ in loader:
            pass
    assert str(bad) in str(err.value) and "dataset index 2" in str(err.value)
