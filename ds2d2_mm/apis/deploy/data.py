"""Images for parity, calibration, evaluation and latency, through the config's test pipeline.

Every image goes through the student config's own test pipeline and the detector's own
``data_preprocessor``, so PyTorch and ONNX Runtime see the same tensor ``(N, C, H, W)``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch.nn as nn

from ...utils.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
#: Dataset wrappers whose ``dataset`` is the split's images.
WRAPPERS = ("RepeatDataset", "ClassBalancedDataset", "MultiImageMixDataset")


def _test_pipeline(cfg, with_annotations: bool = True) -> list:
    pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    if not with_annotations:
        pipeline = [t for t in pipeline if t.get("type") != "LoadAnnotations"]
    return pipeline


def test_loader(cfg, batch_size: int | None = None):
    """The config's test dataloader, in this process (no workers)."""
    from mmengine.runner import Runner

    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    if batch_size is not None:
        loader_cfg.batch_size = batch_size
    return Runner.build_dataloader(loader_cfg)


def train_split_dataset(cfg):
    """The train split's images under the test pipeline (no augmentation)."""
    from mmdet.registry import DATASETS

    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while ds_cfg.get("type") in WRAPPERS and "dataset" in ds_cfg:
        ds_cfg = ds_cfg.dataset
    ds_cfg.pipeline = _test_pipeline(cfg)
    ds_cfg.test_mode = True
    return DATASETS.build(ds_cfg)


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` (sorted), or a :class:`ConfigError` naming it."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"--calib: calibration folder not found: {str(folder)!r}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"--calib: no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return files


def spread_indices(total: int, num: int) -> list[int]:
    """``num`` indices spread evenly over ``range(total)`` (all of them when fewer)."""
    if num >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, num)})


def calibration_items(cfg, calib: str | None, num: int) -> list[dict]:
    """``num`` pipeline outputs for INT8 calibration: from the folder ``calib``, or the config's
    train split (evenly spread over it)."""
    if calib is not None:
        from mmcv.transforms import Compose

        pipeline = Compose(_test_pipeline(cfg, with_annotations=False))
        files = folder_images(calib)
        return [pipeline(dict(img_path=str(files[i]), img_id=i))
                for i in spread_indices(len(files), num)]
    dataset = train_split_dataset(cfg)
    if len(dataset) == 0:
        raise ConfigError("train_dataloader.dataset: the train split has no images to "
                          "calibrate on; pass --calib FOLDER")
    return [dataset[i] for i in spread_indices(len(dataset), num)]


def test_items(cfg, num: int) -> list[dict]:
    """The first ``num`` pipeline outputs of the test split."""
    dataset = test_loader(cfg, batch_size=1).dataset
    return [dataset[i] for i in range(min(num, len(dataset)))]


def preprocess(model: nn.Module, items: list[dict]) -> tuple:
    """``model.data_preprocessor`` of a list of pipeline outputs -> ``(inputs, data_samples)``."""
    from mmengine.dataset import pseudo_collate

    data = model.data_preprocessor(pseudo_collate(items), False)
    return data["inputs"], data["data_samples"]


def single_batches(model: nn.Module, items: list[dict]) -> Iterator[tuple]:
    """One preprocessed batch of one image per item."""
    for item in items:
        yield preprocess(model, [item])
