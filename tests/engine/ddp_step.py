"""One SpectralDistiller training step, in one process or under torchrun with gloo (CPU).

    python -m torch.distributed.run --nproc_per_node 2 ddp_step.py OUT   # 2 processes, DDP
    python ddp_step.py OUT                                               # 1 process

The global batch has 4 images; under DDP rank r takes images 2r and 2r + 1. Every image carries
the same boxes, so each rank has the same number of positive anchors and the per-rank losses
average to the one-process loss. Writes OUT (rank 0): the losses averaged over ranks and the
student / adapter weights before and after one SGD step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]

GLOBAL_BATCH = 4
BOXES = torch.tensor([[4.0, 6.0, 30.0, 28.0], [34.0, 30.0, 60.0, 62.0]])


def main(out: str) -> None:
    import torch.distributed as dist
    from ds2d2_testlib import build, distiller_cfg, tiny_retinanet
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper

    register_all_modules()
    import ds2d2_mm  # noqa: F401

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    student = tiny_retinanet(width=8, fpn=16)
    student["backbone"]["norm_eval"] = True  # BN statistics are per process otherwise
    model = build(distiller_cfg(student, tiny_retinanet(width=16, fpn=16)))
    model.train()
    teacher_params = {id(p) for p in model.teacher.parameters()}
    for amp in model.amplifiers:
        teacher_params |= {id(p) for p in amp.head.parameters()}
    before = {k: v.detach().clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}

    torch.manual_seed(0)
    packed = demo_mm_inputs(batch_size=GLOBAL_BATCH, image_shapes=[(3, 64, 64)] * GLOBAL_BATCH,
                            num_items=[2] * GLOBAL_BATCH, num_classes=3)
    for sample in packed["data_samples"]:
        sample.gt_instances.bboxes = BOXES.clone()
        sample.gt_instances.labels = torch.tensor([0, 2])
    per_rank = GLOBAL_BATCH // world
    part = slice(rank * per_rank, (rank + 1) * per_rank)
    data = {"inputs": packed["inputs"][part], "data_samples": packed["data_samples"][part]}

    if world > 1:
        model = MMDistributedDataParallel(module=model, device_ids=None, broadcast_buffers=False,
                                          find_unused_parameters=False)
        synced = {id(p) for p in model.parameters()}
        assert not synced & teacher_params, "teacher or amplifier parameters are in DDP"
    wrapper = build_optim_wrapper(model, dict(type="OptimWrapper",
                                              optimizer=dict(type="SGD", lr=0.1)))
    log_vars = model.train_step(data, wrapper)
    losses = {k: torch.tensor(float(v)) for k, v in log_vars.items() if k.startswith("loss")}
    if world > 1:
        for value in losses.values():
            dist.all_reduce(value)
            value /= world
    inner = model.module if world > 1 else model
    after = {k: v.detach().clone() for k, v in inner.state_dict().items() if torch.is_tensor(v)}
    if rank == 0:
        torch.save({"losses": {k: float(v) for k, v in losses.items()}, "before": before,
                    "after": after, "world": world}, out)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
