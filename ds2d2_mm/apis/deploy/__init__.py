"""Deployment of an exported student: ONNX export, ONNX Runtime inference, INT8, latency.

``ds2d2-deploy`` (:mod:`ds2d2_mm.cli.deploy`) runs :func:`.run.deploy_student`; the parts, one job
each:

- :mod:`.families`: which export path a detector takes, and the refusals;
- :mod:`.graphs`: the ``nn.Module`` wrappers that are exported (network outputs, no
  post-processing);
- :mod:`.export`: loading a student checkpoint, ``torch.onnx`` export to ONNX bytes;
- :mod:`.ort_runner`: ONNX Runtime sessions plus the family's own mmdet post-processing;
- :mod:`.data`: test, calibration and timing images through the config's test pipeline;
- :mod:`.parity`: PyTorch against ONNX Runtime detections;
- :mod:`.quantize`: calibration images and ONNX Runtime static INT8 quantization;
- :mod:`.evaluate`: AP of a predictor on the config's test split, with its evaluator;
- :mod:`.latency`: per-image latency, median and p90;
- :mod:`.report`: the summary's tables (markdown and terminal);
- :mod:`.run`: the steps in order, the files written once all have passed.

Nothing here is imported by ``import ds2d2_mm``; onnx and onnxruntime are imported where used.
"""
