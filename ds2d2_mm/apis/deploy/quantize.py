"""Static INT8 quantization with ONNX Runtime's tools, calibrated on training images.

Each graph is calibrated on its own inputs as the fp32 pipeline feeds them (for a two-stage
detector the RoI head graph sees the FPN maps and the RPN's proposals of the calibration
images), then quantized: QDQ format, per-channel signed INT8 weights, unsigned INT8 activations,
MinMax calibration (``onnxruntime.quantization.quantize_static``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

SETTINGS = "QDQ, per-channel INT8 weights, UINT8 activations, MinMax calibration"


class _FeedReader:
    """``CalibrationDataReader`` over recorded input feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._iter: Iterator = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def __iter__(self):  # the reader protocol of recent onnxruntime versions
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def quantize_graph(onnx_bytes: bytes, feeds: Sequence[dict[str, np.ndarray]]) -> bytes:
    """INT8 ONNX bytes of the fp32 graph ``onnx_bytes``, calibrated on ``feeds``.

    The graph is first prepared by ONNX Runtime's ``quant_pre_process`` (shape inference and
    fusions) when it accepts it; work files live in a temporary folder.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not feeds:
        raise ValueError("no calibration feeds")

    class Reader(_FeedReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="ds2d2-int8-") as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(onnx_bytes)
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # noqa: BLE001 - the preparation is an optimisation only
            logging.getLogger(__name__).warning("quant_pre_process skipped: %s", exc)
            pre = src
        quantize_static(str(pre), str(dst), Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return dst.read_bytes()
