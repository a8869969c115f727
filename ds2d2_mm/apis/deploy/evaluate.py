"""AP of a predictor on the config's test split, scored by the config's own evaluator."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from .data import test_loader


@torch.no_grad()
def evaluate(cfg, model: nn.Module, predict: Callable, desc: str = "evaluate",
             progress: bool = True) -> dict[str, float]:
    """Run ``predict(inputs, data_samples) -> data_samples`` over the test split and score it
    with ``cfg.test_evaluator`` (e.g. ``CocoMetric``).

    Args:
        cfg: The student config.
        model: The student (its ``data_preprocessor`` makes the batches).
        predict: The predictor (the PyTorch student's ``predict``, or :class:`.OrtDetector`'s).

    Returns:
        The evaluator's metrics (e.g. ``coco/bbox_mAP``, in [0, 1]).
    """
    from mmengine.evaluator import Evaluator

    loader = test_loader(cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        data = model.data_preprocessor(batch, False)
        outputs = predict(data["inputs"], data["data_samples"])
        evaluator.process(data_samples=outputs, data_batch=batch)
    metrics = evaluator.evaluate(len(loader.dataset))
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
