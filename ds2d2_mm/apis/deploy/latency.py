"""Per-image latency on the config's test images, median and p90.

Each timed call is one image (batch 1) from its preprocessed tensor to its detections after NMS:
the network and the family's post-processing, the same post-processing for every backend (the
test pipeline and the normalisation are outside, as they are the same work for all of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm


@torch.no_grad()
def measure_latency(predict: Callable, batches: Sequence[tuple], warmup: int = 3,
                    repeats: int = 1, desc: str = "latency", progress: bool = True) -> dict:
    """Time ``predict(inputs, data_samples)`` on every batch, ``repeats`` rounds.

    Args:
        predict: The predictor.
        batches: ``(inputs (1, C, H, W), data_samples)`` pairs.
        warmup: Untimed calls first (on the first batch).
        repeats: Rounds over ``batches``.

    Returns:
        ``median_ms``, ``p90_ms``, ``mean_ms``, ``calls`` (timed), ``images``, ``input_shape``.
    """
    import copy

    if not batches:
        raise ValueError("no images to time")
    for _ in range(warmup):
        predict(batches[0][0], copy.deepcopy(batches[0][1]))
    times = []
    total = repeats * len(batches)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for _ in range(repeats):
            for inputs, samples in batches:
                samples = copy.deepcopy(samples)
                t0 = time.perf_counter()
                predict(inputs, samples)
                times.append(time.perf_counter() - t0)
                bar.update(1)
    ms = np.asarray(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(ms.mean()), "calls": int(len(ms)), "images": len(batches),
            "input_shape": list(batches[0][0].shape)}
