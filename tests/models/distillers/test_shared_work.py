"""The distillation step's shared work (``distill_cfg.share_work``) and GPU options
(``distill_cfg.accelerate``): the same losses and gradients as the straightforward path."""

from __future__ import annotations

import pytest
import torch
from ds2d2_testlib import build, distiller_cfg, make_batch, tiny_faster_rcnn, tiny_retinanet

from ds2d2_mm.utils.errors import ConfigError
from ds2d2_mm.utils.phases import PhaseRecorder

TOL = dict(rtol=1e-6, atol=1e-7)


def retina(fpn_s: int = 16, **distill) -> dict:
    return distiller_cfg(tiny_retinanet(width=8, fpn=fpn_s), tiny_retinanet(width=16, fpn=16),
                         **distill)


def frcnn(**distill) -> dict:
    distill.setdefault("kd_cls", dict(type="KDKLDivLoss", temperature=3.0, loss_weight=0.5))
    distill.setdefault("kd_reg", dict(type="L1Loss", loss_weight=1.0))
    return distiller_cfg(tiny_faster_rcnn(width=8, fpn=16), tiny_faster_rcnn(width=16, fpn=16),
                         **distill)


def step(model, inputs, samples) -> tuple[dict, dict]:
    """Losses (detached) and the gradient of their sum for every trained parameter."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the samplers of the two-stage student draw the same RoIs
    losses = model.loss(inputs, samples)
    total = sum(sum(v) if isinstance(v, list) else v for k, v in losses.items() if "loss" in k)
    total.backward()
    values = {k: (torch.stack(v) if isinstance(v, list) else v).detach().clone()
              for k, v in losses.items() if "loss" in k}
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return values, grads


def count_calls(module: torch.nn.Module) -> list[int]:
    """Counts the calls of ``module.forward`` from now on (in the returned one-item list)."""
    calls, original = [0], module.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    module.forward = counted
    return calls


@pytest.mark.parametrize("cfg", [retina(), retina(fpn_s=8), frcnn()],
                         ids=["retina-raw", "retina-adapted", "faster-rcnn"])
def test_shared_path_equals_straightforward_path(cfg):
    model = build(cfg).train()
    inputs, samples = make_batch(model, size=96, num_boxes=4)
    high = next(a for a in model.amplifiers if a.name == "high")
    levels = len(model.teacher.extract_feat(inputs))
    hf_calls = count_calls(high.decomposer)
    model.distill_cfg["share_work"] = False
    plain, plain_grads = step(model, inputs, samples)
    assert hf_calls[0] == 2 * levels  # student and teacher maps
    model.distill_cfg["share_work"] = True
    shared, shared_grads = step(model, inputs, samples)
    assert hf_calls[0] == 3 * levels  # the teacher's bands came from the explicit stream
    assert set(plain) == set(shared) and {k for k in shared if "imp_high" in k}
    for key in plain:
        torch.testing.assert_close(shared[key], plain[key], **TOL, msg=key)
    assert set(plain_grads) == set(shared_grads) and plain_grads
    for name in plain_grads:
        torch.testing.assert_close(shared_grads[name], plain_grads[name], **TOL, msg=name)


def test_anchors_made_once_for_both_amplifiers():
    model = build(retina()).train()
    inputs, samples = make_batch(model, size=96, num_boxes=4)
    made = [0]
    for amp in model.amplifiers:
        gen = amp.head.prior_generator
        original = gen.grid_priors

        def counted(*args, _original=original, **kwargs):
            made[0] += 1
            return _original(*args, **kwargs)

        gen.grid_priors = counted
    model.distill_cfg["share_work"] = False
    model.loss(inputs, samples)
    assert made[0] == 2
    model.distill_cfg["share_work"] = True
    made[0] = 0
    model.loss(inputs, samples)
    assert made[0] == 1


def test_phases_name_every_part_and_cost_nothing_when_off():
    model = build(retina()).train()
    inputs, samples = make_batch(model, size=96, num_boxes=4)
    with PhaseRecorder() as rec:
        model.loss(inputs, samples)
    for name in ("student pass", "teacher forward", "teacher bands", "explicit stream",
                 "amplifier full / head pass (student)", "amplifier high / head pass (teacher)",
                 "amplifier high / inputs", "amplifier full / targets and anchors",
                 "amplifier full / box decoding", "amplifier high / KD losses"):
        assert rec.totals.get(name, 0) > 0, (name, sorted(rec.totals))
    inner = sum(v for k, v in rec.totals.items() if k.startswith("amplifier full / "))
    assert inner <= rec.totals["amplifier full"]
    before = dict(rec.totals)
    model.loss(inputs, samples)  # the recorder is closed: nothing is recorded
    assert rec.totals == before


def test_accelerate_off_changes_nothing():
    inputs_model = build(retina()).train()
    inputs, samples = make_batch(inputs_model, size=96, num_boxes=4)
    default, default_grads = step(inputs_model, inputs, samples)
    off = build(retina(accelerate=dict(compile=False, frozen_fp16=False))).train()
    values, grads = step(off, inputs, samples)
    for key in default:
        torch.testing.assert_close(values[key], default[key], rtol=0, atol=0, msg=key)
    for name in default_grads:
        torch.testing.assert_close(grads[name], default_grads[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("key", ["compile", "frozen_fp16"])
def test_accelerate_on_cpu_refused_clearly(key):
    model = build(retina(accelerate={key: True})).train()
    inputs, samples = make_batch(model, size=64)
    with pytest.raises(ConfigError, match=rf"distill_cfg\.accelerate \['{key}'\] are GPU "
                                          r"options, but the batch is on 'cpu'"):
        model.loss(inputs, samples)


@pytest.mark.parametrize("distill,match", [
    (dict(accelerate=dict(compile="yes")), r"distill_cfg\.accelerate\.compile must be True"),
    (dict(accelerate=dict(graphs=True)), r"distill_cfg\.accelerate: unknown keys \['graphs'\]"),
    (dict(share_work=1), r"distill_cfg\.share_work must be True or False"),
])
def test_bad_accelerate_keys_refused(distill, match):
    with pytest.raises(ConfigError, match=match):
        build(retina(**distill))
