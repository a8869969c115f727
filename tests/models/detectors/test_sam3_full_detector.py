"""Sam3PromptedDetector (tiny SAM3, CPU): adapter identity, freeze policy, training steps with
class-name prompts, SAM3's target format, predictions that CocoMetric scores, the three stages,
and the two configs."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config
from sam3_testlib import REPO, requires_sam3

DIOR_CFG = REPO / "configs" / "sam3" / "sam3_prompted_dior.py"
TINY_CFG = REPO / "configs" / "sam3" / "sam3_prompted_tiny_synthetic.py"
CLASSES = ("airplane", "ship", "storagetank", "vehicle")
SIZE = 112


@pytest.fixture(scope="module")
def tiny_vocab(tmp_path_factory):
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import write_tiny_bpe_vocab

    path = tmp_path_factory.mktemp("bpe") / "tiny_bpe.txt.gz"
    write_tiny_bpe_vocab(path)
    return str(path)


def make_detector(tiny_vocab: str, **kwargs):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import ds2d2_mm  # noqa: F401  (registers Sam3PromptedDetector)

    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    cfg = dict(
        type="Sam3PromptedDetector", arch="tiny", bpe_path=tiny_vocab, classes=CLASSES,
        class_prompts={"storagetank": "storage tank"}, num_trainable_blocks=2,
        adapter_cfg=dict(hidden_channels=8),
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[127.5] * 3, std=[127.5] * 3,
                               bgr_to_rgb=True),
    )  # fmt: skip
    return MODELS.build({**cfg, **kwargs})


def demo_batch(model, training: bool, sizes=((SIZE, SIZE), (SIZE, SIZE)), items=(3, 2)):
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(1)
    packed = demo_mm_inputs(batch_size=len(sizes), image_shapes=[(3, *s) for s in sizes],
                            num_items=list(items), num_classes=len(CLASSES))  # fmt: skip
    return model.data_preprocessor(packed, training)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- the adapter
@requires_sam3
def test_adapter_is_the_identity_at_start(tiny_vocab):
    from ds2d2_mm.models.detectors.sam3_prompted import (
        build_sam3_image_model,
        insert_spectral_adapter,
    )
    from ds2d2_mm.models.detectors.sam3_prompted.compat import sam3_cpu_compat
    from ds2d2_mm.models.detectors.sam3_prompted.prompts import build_find_batch

    torch.manual_seed(0)
    model = build_sam3_image_model("tiny", bpe_path=tiny_vocab).eval()
    images = torch.randn(2, 3, SIZE, SIZE)
    batch = build_find_batch(images, ["airplane", "storage tank"])
    keys = ("pred_logits", "pred_boxes", "presence_logit_dec", "pred_masks")
    with torch.no_grad(), sam3_cpu_compat():
        before = model(batch)[-1]
        adapter = insert_spectral_adapter(model, hidden_channels=8)
        after = model(batch)[-1]
        assert sum(p.numel() for p in adapter.parameters()) > 0
        for key in keys:
            assert torch.equal(before[key], after[key]), key
        adapter.gamma.fill_(0.5)  # the adapter does act once it has learned a scale
        moved = model(batch)[-1]
    # (the random-init box head is zero: boxes do not depend on the image until it learns)
    assert not torch.equal(before["pred_logits"], moved["pred_logits"])
    assert "backbone.vision_backbone.spectral_adapter.gamma" in model.state_dict()
    assert any(k.startswith("backbone.vision_backbone.trunk.blocks.") for k in model.state_dict())


# ---------------------------------------------------------------- freeze policy and modes
@requires_sam3
def test_freeze_policy_and_eval_modes(tiny_vocab):
    model = make_detector(tiny_vocab)
    sam3 = model.sam3
    model.train()
    trainable = {n for n, p in sam3.named_parameters() if p.requires_grad}
    depth = len(sam3.backbone.vision_backbone.trunk.blocks)
    for name in trainable:
        assert name.startswith((
            f"backbone.vision_backbone.trunk.blocks.{depth - 2}.",
            f"backbone.vision_backbone.trunk.blocks.{depth - 1}.",
            "backbone.vision_backbone.spectral_adapter.", "transformer.decoder.bbox_embed.",
            "transformer.decoder.presence_token", "dot_prod_scoring.", "segmentation_head.",
        )), name  # fmt: skip
    assert any(n.startswith("transformer.decoder.presence_token.") for n in trainable)
    assert any(n.startswith("backbone.vision_backbone.spectral_adapter.") for n in trainable)
    frozen = [sam3.backbone.language_backbone, sam3.geometry_encoder, sam3.transformer.encoder,
              sam3.transformer.decoder.layers, sam3.backbone.vision_backbone.convs,
              *sam3.backbone.vision_backbone.trunk.blocks[: depth - 2]]  # fmt: skip
    for module in frozen:
        assert not any(p.requires_grad for p in module.parameters())
        assert not any(m.training for m in module.modules()), type(module).__name__
    assert sam3.training  # DAC one-to-many queries and matching stay on
    assert all(b.training for b in sam3.backbone.vision_backbone.trunk.blocks[depth - 2 :])
    assert sam3.dot_prod_scoring.training and sam3.transformer.decoder.bbox_embed.training


# ---------------------------------------------------------------- targets
@requires_sam3
def test_targets_are_sam3s_format():
    from ds2d2_mm.models.detectors.sam3_prompted.prompts import build_find_batch

    images = torch.zeros(2, 3, 100, 200)
    boxes = [torch.tensor([[0.0, 0.0, 100.0, 50.0], [50.0, 50.0, 150.0, 100.0]]),
             torch.zeros(0, 4)]  # fmt: skip
    labels = [torch.tensor([2, 0]), torch.zeros(0, dtype=torch.long)]
    batch = build_find_batch(images, ["a", "b", "c"], boxes, labels)
    stage, target = batch.find_inputs[0], batch.find_targets[0]
    assert stage.img_ids.tolist() == [0, 0, 0, 1, 1, 1]
    assert stage.text_ids.tolist() == [0, 1, 2, 0, 1, 2]
    assert target.num_boxes.tolist() == [1, 0, 1, 0, 0, 0]  # absent classes: negative prompts
    # packed in query order: (image 0, class 0), then (image 0, class 2); cxcywh / (W, H)
    expected = torch.tensor([[0.5, 0.75, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5]])
    assert torch.allclose(target.boxes, expected)
    assert torch.allclose(target.boxes_padded[[0, 2], 0], expected)
    assert target.object_ids_padded[1].tolist() == [-1]
    assert target.is_exhaustive.all()
    assert batch.find_text_batch == ["a", "b", "c"]


# ---------------------------------------------------------------- training steps
@requires_sam3
def test_training_steps_change_trainable_and_keep_frozen_bit_for_bit(tiny_vocab):
    from mmengine.optim import build_optim_wrapper

    model = make_detector(tiny_vocab)
    model.train()
    wrapper = build_optim_wrapper(
        model, dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3))
    )
    sam3 = model.sam3
    depth = len(sam3.backbone.vision_backbone.trunk.blocks)
    frozen_parts = {
        "text": sam3.backbone.language_backbone, "geometry": sam3.geometry_encoder,
        "fusion": sam3.transformer.encoder, "decoder layers": sam3.transformer.decoder.layers,
        "neck": sam3.backbone.vision_backbone.convs,
        "frozen ViT blocks": sam3.backbone.vision_backbone.trunk.blocks[: depth - 2],
    }  # fmt: skip
    before_frozen = {k: snapshot(m) for k, m in frozen_parts.items()}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    data = demo_batch(model, True)
    for _ in range(2):
        losses = model.loss(data["inputs"], data["data_samples"])
        assert set(losses) >= {"loss_sam3", "sam3_ce", "sam3_presence", "sam3_bbox", "sam3_giou"}
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss)
        wrapper.update_params(loss)
    for key, module in frozen_parts.items():
        for name, value in module.state_dict().items():
            assert torch.equal(value, before_frozen[key][name]), f"{key}: {name}"
    params = dict(model.named_parameters())
    changed = {n for n, v in trainable.items() if not torch.equal(params[n], v)}
    vit_tail = f"sam3.backbone.vision_backbone.trunk.blocks.{depth - 1}."
    assert any(n.startswith(vit_tail) for n in changed)
    assert "sam3.backbone.vision_backbone.spectral_adapter.gamma" in changed
    assert any(n.startswith("sam3.transformer.decoder.presence_token") for n in changed)
    assert any(n.startswith("sam3.dot_prod_scoring.") for n in changed)
    assert any(n.startswith("sam3.transformer.decoder.bbox_embed.") for n in changed)


@requires_sam3
def test_mask_loss_trains_the_segmentation_head(tiny_vocab):
    from mmdet.structures.bbox import get_box_tensor
    from mmdet.structures.mask import BitmapMasks

    model = make_detector(tiny_vocab, with_mask_loss=True)
    model.train()
    data = demo_batch(model, True)
    for sample in data["data_samples"]:
        gt = sample.gt_instances
        masks = torch.zeros(len(gt), SIZE, SIZE, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(get_box_tensor(gt.bboxes).long().tolist()):
            masks[i, y1:y2, x1:x2] = 1
        gt.masks = BitmapMasks(masks.numpy(), SIZE, SIZE)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert {"sam3_mask", "sam3_dice"} <= set(losses)
    losses["loss_sam3"].backward()
    head = model.sam3.segmentation_head
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    model_no_masks = make_detector(tiny_vocab, with_mask_loss=True)
    data = demo_batch(model_no_masks, True)
    with pytest.raises(KeyError, match="with_mask"):
        model_no_masks.loss(data["inputs"], data["data_samples"])


# ---------------------------------------------------------------- predictions
@requires_sam3
def test_predictions_are_detdatasamples_that_coco_metric_scores(tiny_vocab, tmp_path):
    import json

    from mmdet.evaluation import CocoMetric
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import get_box_tensor

    model = make_detector(tiny_vocab, max_per_img=7).eval()
    data = demo_batch(model, False, sizes=((SIZE, SIZE), (98, 112)))
    for i, sample in enumerate(data["data_samples"]):  # as if resized from 2x larger images
        h, w = sample.img_shape
        sample.set_metainfo(dict(img_id=i, ori_shape=(2 * h, 2 * w), scale_factor=(0.5, 0.5)))
    with torch.no_grad():
        results = model.predict(data["inputs"], data["data_samples"])
    images, anns = [], []
    for i, sample in enumerate(results):
        assert isinstance(sample, DetDataSample)
        pred = sample.pred_instances
        assert pred.bboxes.shape == (7, 4) and pred.scores.shape == pred.labels.shape == (7,)
        assert pred.labels.min() >= 0 and pred.labels.max() < len(CLASSES)
        assert (pred.scores[:-1] >= pred.scores[1:]).all()
        h, w = sample.ori_shape
        assert pred.bboxes[:, 0::2].max() <= w and pred.bboxes[:, 1::2].max() <= h
        images.append(dict(id=i, width=w, height=h, file_name=f"{i}.png"))
        for j, (x1, y1, x2, y2) in enumerate(get_box_tensor(sample.gt_instances.bboxes).tolist()):
            anns.append(dict(id=len(anns) + 1, image_id=i, bbox=[2 * x1, 2 * y1, 2 * (x2 - x1),
                        2 * (y2 - y1)], area=4 * (x2 - x1) * (y2 - y1), iscrowd=0,
                        category_id=int(sample.gt_instances.labels[j]) + 1))  # fmt: skip
    ann_file = tmp_path / "gt.json"
    cats = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    metric = CocoMetric(ann_file=str(ann_file), metric="bbox")
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [s.to_dict() for s in results])
    scores = metric.evaluate(len(results))
    assert 0.0 <= scores["coco/bbox_mAP"] <= 1.0


@requires_sam3
def test_prompts_come_from_the_classes(tiny_vocab):
    model = make_detector(tiny_vocab)
    assert model.prompts() == ["airplane", "ship", "storage tank", "vehicle"]
    unnamed = make_detector(tiny_vocab, classes=None)
    with pytest.raises(RuntimeError, match="model.classes"):
        unnamed.prompts()
    unnamed.dataset_meta = dict(classes=("ship",))
    assert unnamed.prompts() == ["ship"]
    by_dataset = make_detector(tiny_vocab, classes="SyntheticAerialDataset")
    assert by_dataset.prompts() == model.prompts()
    data = demo_batch(model, False, sizes=((SIZE + 14, SIZE),), items=(1,))
    with pytest.raises(ValueError, match="keep_ratio=False"):
        model.predict(data["inputs"], data["data_samples"])


def test_classes_by_dataset_type():
    """A str names a dataset type: its METAINFO classes; a name without them is refused."""
    import ds2d2_mm  # noqa: F401  (registers the dataset types)
    from ds2d2_mm.datasets import DIORDataset
    from ds2d2_mm.datasets.classes import DIOR_CLASSES
    from ds2d2_mm.models.detectors.sam3_prompted.detector import resolve_classes

    assert resolve_classes("DIORDataset") == DIOR_CLASSES == DIORDataset.METAINFO["classes"]
    assert resolve_classes(["ship", "vehicle"]) == ("ship", "vehicle")
    assert resolve_classes(None) is None
    for name in ("NoSuchDataset", "ConcatDataset"):  # unknown; registered, without classes
        with pytest.raises(ValueError, match=f"model.classes='{name}' names no registered"):
            resolve_classes(name)


# ---------------------------------------------------------------- the three stages
@requires_sam3
def test_stages_switch_the_trainable_set(tiny_vocab):
    from types import SimpleNamespace

    from ds2d2_mm.engine.hooks.progressive_unfreeze_hook import ProgressiveUnfreezeHook
    from ds2d2_mm.models.detectors.sam3_prompted import STAGE_PREFIXES

    model = make_detector(tiny_vocab)
    model.train()
    hook = ProgressiveUnfreezeHook(
        [dict(begin=0, trainable=STAGE_PREFIXES["vit"]),
         dict(begin=1, trainable=STAGE_PREFIXES["head"]),
         dict(begin=2, trainable=STAGE_PREFIXES["both"])], by_epoch=True)  # fmt: skip
    runner = SimpleNamespace(model=model, epoch=0, iter=0)
    hook.before_train(runner)
    allowed = set(hook._allowed)

    def trainable():
        return {n for n, p in model.named_parameters() if p.requires_grad}

    vit = {n for n in allowed if n.startswith(tuple(STAGE_PREFIXES["vit"]))}
    head = allowed - vit
    assert vit and head and all(n.startswith(tuple(STAGE_PREFIXES["head"])) for n in head)
    assert trainable() == vit
    assert not model.sam3.dot_prod_scoring.training  # frozen head: eval mode
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert trainable() == head
    assert not any(b.training for b in model.sam3.backbone.vision_backbone.trunk.blocks)
    assert model.sam3.dot_prod_scoring.training
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert trainable() == vit | head == allowed


# ---------------------------------------------------------------- configs
def test_dior_config():
    from ds2d2_mm.datasets import DIORDataset
    from ds2d2_mm.models.detectors.sam3_prompted import STAGE_PREFIXES
    from ds2d2_mm.models.detectors.sam3_prompted.detector import resolve_classes
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import DIOR_PROMPTS

    cfg = Config.fromfile(str(DIOR_CFG))
    model = cfg.model
    assert model.type == "Sam3PromptedDetector" and model.arch == "sam3"
    assert model.checkpoint.endswith("sam3.pt") and model.bpe_path.endswith("16e6.txt.gz")
    assert model.img_size == 1008 and model.num_trainable_blocks == 6
    assert model.classes == cfg.train_dataloader.dataset.type == "DIORDataset"
    assert resolve_classes(model.classes) == tuple(DIORDataset.METAINFO["classes"])
    assert dict(model.class_prompts) == DIOR_PROMPTS
    assert model.data_preprocessor.mean == [127.5] * 3 and model.data_preprocessor.bgr_to_rgb
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.accumulative_counts > 1
    stages = cfg.custom_hooks[0].stages
    assert cfg.custom_hooks[0].type == "ProgressiveUnfreezeHook"
    assert [list(s.trainable) for s in stages] == [STAGE_PREFIXES[k] for k in ("vit", "head",
                                                                               "both")]
    assert cfg.val_evaluator.type == "CocoMetric"
    resize = next(t for t in cfg.train_pipeline if t.type == "Resize")
    assert resize.scale == (1008, 1008) and resize.keep_ratio is False


@requires_sam3
def test_dior_config_model_builds_at_tiny_size(tiny_vocab):
    from mmdet.registry import MODELS

    import ds2d2_mm  # noqa: F401
    from ds2d2_mm.datasets import DIORDataset

    cfg = Config.fromfile(str(DIOR_CFG))
    cfg.model.update(arch="tiny", checkpoint=None, bpe_path=tiny_vocab, img_size=SIZE)
    model = MODELS.build(cfg.model)
    assert model.classes == tuple(DIORDataset.METAINFO["classes"])
    assert model.prompts()[7] == "expressway service area"
    tok = model.sam3.backbone.language_backbone.tokenizer
    words = [w for prompt in model.prompts() for w in prompt.split(" ") if "-" not in w]
    assert all(len(tok.encode(w)) == 1 for w in words)


@requires_sam3
def test_tiny_config_trains_and_evaluates_through_the_runner(tmp_path, monkeypatch):
    """tools/train.py's path: Runner, three stages (one iteration each), CocoMetric."""
    from mmengine.runner import Runner

    from ds2d2_mm.datasets import SyntheticAerialDataset
    from ds2d2_mm.tooling.synthetic.generate import generate_synthetic_dataset

    monkeypatch.setenv("DS2D2_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    generate_synthetic_dataset(root, num_train=2, num_val=2, img_size=SIZE, num_test=0)
    cfg = Config.fromfile(str(TINY_CFG))
    assert cfg.model.classes == cfg.train_dataloader.dataset.type == "SyntheticAerialDataset"
    cfg.work_dir = str(tmp_path / "work")
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = str(root) + "/"
    cfg.val_evaluator.ann_file = str(root / "annotations" / "val.json")
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.optim_wrapper.accumulative_counts = 1
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = "WARNING"
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.model.classes == tuple(SyntheticAerialDataset.METAINFO["classes"])
    hook = next(h for h in runner.hooks if type(h).__name__ == "ProgressiveUnfreezeHook")
    assert hook.active == 2 and runner.iter == 3
    metrics = runner.message_hub.log_scalars
    assert "val/coco/bbox_mAP" in metrics and "train/loss_sam3" in metrics
    assert (root.parent / "cache" / "sam3" / "tiny_bpe_simple_vocab.txt.gz").is_file()


def _best_iou_per_box(results) -> list[torch.Tensor]:
    """Per image: each ground-truth box's best IoU among the 10 top-scoring predictions."""
    from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

    return [bbox_overlaps(get_box_tensor(s.gt_instances.bboxes),
                          s.pred_instances.bboxes[:10]).max(dim=1).values for s in results]


def test_a_model_fitted_to_one_batch_predicts_its_boxes_and_labels(tiny_vocab):
    """The prediction path end to end (box decoding, ranking over class prompts, labels): after
    fitting one batch, the predictions find the batch's own boxes with their classes, far better
    than the same model untrained."""
    model = make_detector(tiny_vocab)
    data = demo_batch(model, True)
    for sample in data["data_samples"]:
        sample.set_metainfo(dict(scale_factor=(1.0, 1.0), ori_shape=sample.img_shape))
    with torch.no_grad():
        untrained = _best_iou_per_box(model.eval().predict(data["inputs"], data["data_samples"]))
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    model.train()
    torch.manual_seed(0)
    for _ in range(250):
        losses = model.loss(data["inputs"], data["data_samples"])
        opt.zero_grad()
        sum(v for k, v in losses.items() if k.startswith("loss")).backward()
        opt.step()
    with torch.no_grad():
        results = model.eval().predict(data["inputs"], data["data_samples"])
    fitted = _best_iou_per_box(results)
    for before, after in zip(untrained, fitted, strict=True):
        assert after.min() > 0.4 and after.mean() > 0.6, after
        assert after.mean() > before.mean() + 0.2, (before, after)
    for sample in results:
        assert set(sample.pred_instances.labels[:2].tolist()) <= \
            set(sample.gt_instances.labels.tolist())
