"""CUDA paths (skipped without a GPU; run on a GPU machine): the distiller trains under fp16
autocast with fp32 losses, and the CUDA ops agree with the CPU ones."""

from __future__ import annotations

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch, tiny_retinanet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_distiller_step_under_fp16_autocast_keeps_fp32_losses():
    from mmengine.optim import AmpOptimWrapper

    model = build(distiller_cfg(tiny_retinanet(), tiny_retinanet(width=16, fpn=32))).cuda()
    model.train()
    assert next(model.teacher.parameters()).is_cuda
    assert all(next(a.head.parameters()).is_cuda for a in model.amplifiers)
    inputs, samples = make_batch(model)
    inputs, samples = inputs.cuda(), [s.cuda() for s in samples]
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=1e-3),
                              dtype="float16")
    with wrapper.optim_context(model):
        losses = model.loss(inputs, samples)
    for key in ("loss_exp_low", "loss_exp_high", "loss_imp_full_cls", "loss_imp_high_reg"):
        assert losses[key].dtype == torch.float32, key
        assert torch.isfinite(losses[key])
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    wrapper.update_params(total)


def test_cuda_nms_equals_cpu():
    from mmcv.ops import nms

    torch.manual_seed(0)
    xy = torch.rand(200, 2) * 100
    boxes = torch.cat([xy, xy + torch.rand(200, 2) * 30 + 1], dim=1)
    scores = torch.rand(200)
    _, keep_cpu = nms(boxes, scores, 0.5)
    _, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
    assert torch.equal(keep_cpu, keep_gpu.cpu())
