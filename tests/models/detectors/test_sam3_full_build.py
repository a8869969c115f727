"""SAM3's full image model from sam3's own classes: the tiny build, the 'sam3' sizes, the
checkpoint key mapping, and the BPE vocabulary (resolution errors, the tiny vocabulary)."""

from __future__ import annotations

import gzip

import pytest
import torch
from sam3_testlib import requires_sam3


@pytest.fixture(scope="module")
def tiny_vocab(tmp_path_factory):
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import write_tiny_bpe_vocab

    path = tmp_path_factory.mktemp("bpe") / "tiny_bpe.txt.gz"
    write_tiny_bpe_vocab(path)
    return str(path)


# ---------------------------------------------------------------- vocabulary
@requires_sam3
def test_tiny_vocab_round_trips_through_sam3_tokenizer(tiny_vocab):
    from sam3.model.tokenizer_ve import SimpleTokenizer

    from ds2d2_mm.datasets.classes import DIOR_CLASSES, SYNTHETIC_CLASSES
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import (
        DIOR_PROMPTS,
        TINY_BPE_VOCAB_SIZE,
        TINY_VOCAB_WORDS,
    )

    tok = SimpleTokenizer(tiny_vocab)
    assert tok.vocab_size == TINY_BPE_VOCAB_SIZE
    for word in TINY_VOCAB_WORDS:  # every class word is one token
        assert len(tok.encode(word)) == 1, word
    for name in [*SYNTHETIC_CLASSES, *DIOR_CLASSES, *DIOR_PROMPTS.values(), "unseen 42 words"]:
        ids = tok([name], context_length=32)[0].tolist()
        assert ids[0] == tok.sot_token_id and tok.eot_token_id in ids
        body = ids[1 : ids.index(tok.eot_token_id)]
        assert max(body) < TINY_BPE_VOCAB_SIZE
        decoded = tok.decode(body).replace(" ", "")
        assert decoded == name.replace(" ", "").lower()


def test_tiny_vocab_is_the_same_bytes_every_time(tmp_path):
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import (
        TINY_BPE_VOCAB_SIZE,
        write_tiny_bpe_vocab,
    )

    a, b = tmp_path / "a.gz", tmp_path / "b.gz"
    assert write_tiny_bpe_vocab(a) == write_tiny_bpe_vocab(b) == TINY_BPE_VOCAB_SIZE
    assert a.read_bytes() == b.read_bytes()
    lines = gzip.decompress(a.read_bytes()).decode().split("\n")
    assert lines[0].startswith("#version")
    assert all(len(line.split()) == 2 for line in lines[1:])  # one merge a line, no blank line


def test_learned_merges_make_each_word_one_symbol():
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import learn_bpe_merges

    merges = learn_bpe_merges(["tank", "tanker", "ship"])
    symbols = {a + b for a, b in merges}
    assert {"tank</w>", "tanker</w>", "ship</w>"} <= symbols
    assert len(merges) == len(set(merges))


def test_bpe_resolution_errors_name_the_path(tmp_path):
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import (
        BpeVocabNotFoundError,
        resolve_bpe_path,
    )

    missing = tmp_path / "nowhere" / "bpe_simple_vocab_16e6.txt.gz"
    with pytest.raises(BpeVocabNotFoundError, match="nowhere.*sam3.pt"):
        resolve_bpe_path(str(missing))
    given = tmp_path / "mine.txt.gz"
    given.write_bytes(b"x")
    assert resolve_bpe_path(str(given)) == str(given)


def test_bpe_resolution_errors_when_nothing_is_installed(monkeypatch):
    from ds2d2_mm.models.detectors.sam3_prompted import vocab

    monkeypatch.setattr(vocab, "_sam3_assets_file", lambda: None)
    monkeypatch.setattr(vocab, "_package_file", lambda package, name: None)
    with pytest.raises(vocab.BpeVocabNotFoundError) as err:
        vocab.resolve_bpe_path(None)
    message = str(err.value)
    assert "open_clip_torch" in message and "bpe_path" in message
    assert vocab.CLIP_BPE_SHA256 in message and "next to your sam3.pt" in message


def test_bpe_resolution_refuses_a_wrong_open_clip_copy(monkeypatch, tmp_path):
    from ds2d2_mm.models.detectors.sam3_prompted import vocab

    fake = tmp_path / vocab.BPE_FILENAME
    fake.write_bytes(gzip.compress(b"#version: 0.2\na b"))
    monkeypatch.setattr(vocab, "_sam3_assets_file", lambda: None)
    monkeypatch.setattr(vocab, "_package_file", lambda package, name: str(fake))
    with pytest.raises(vocab.BpeVocabNotFoundError, match="sha256"):
        vocab.resolve_bpe_path(None)


@requires_sam3
def test_open_clip_vocab_is_clips_when_installed():
    from ds2d2_mm.models.detectors.sam3_prompted import vocab

    path = vocab._package_file("open_clip", vocab.BPE_FILENAME)
    if path is None:
        pytest.skip("open_clip_torch is not installed")
    from sam3.model.tokenizer_ve import SimpleTokenizer

    assert vocab.resolve_bpe_path(None) == path
    tok = SimpleTokenizer(path)
    assert tok.vocab_size == vocab.CLIP_BPE_VOCAB_SIZE
    merges = gzip.open(path).read().decode("utf-8").split("\n")
    assert merges[1] == "i n" and merges[48894] == "jeky ll</w>"


# ---------------------------------------------------------------- the model
@requires_sam3
def test_tiny_model_is_sam3s_own_image_model(tiny_vocab):
    from sam3.model.sam3_image import Sam3Image
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.vitdet import ViT
    from sam3.train.matcher import BinaryHungarianMatcherV2

    from ds2d2_mm.models.backbones import tf32_state
    from ds2d2_mm.models.detectors.sam3_prompted import build_sam3_image_model

    before = tf32_state()
    model = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    assert tf32_state() == before
    assert type(model) is Sam3Image
    assert isinstance(model.backbone.vision_backbone.trunk, ViT)
    assert isinstance(model.backbone.language_backbone, VETextEncoder)
    assert isinstance(model.matcher, BinaryHungarianMatcherV2)
    assert model.transformer.decoder.presence_token is not None
    assert model.segmentation_head is not None and model.dot_prod_scoring is not None
    total = sum(p.numel() for p in model.parameters())
    assert total < 2_000_000  # CPU-sized
    assert all(torch.isfinite(p).all() for p in model.parameters())  # nothing left torch.empty
    torch.manual_seed(3)
    again = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    torch.manual_seed(3)
    same = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    for (k, a), b in zip(again.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), k  # reproducible random init
    assert model.backbone.language_backbone.context_length == 16


@requires_sam3
def test_tiny_model_needs_no_vocab_path(tmp_path, monkeypatch):
    from ds2d2_mm.models.detectors.sam3_prompted import build_sam3_image_model

    monkeypatch.setenv("DS2D2_CACHE", str(tmp_path))
    model = build_sam3_image_model("tiny")
    assert (tmp_path / "sam3" / "tiny_bpe_simple_vocab.txt.gz").is_file()
    assert model.backbone.language_backbone.tokenizer.vocab_size == 682


@requires_sam3
def test_clip_vocab_is_refused_by_the_tiny_text_encoder(tiny_vocab, tmp_path):
    from ds2d2_mm.models.detectors.sam3_prompted import build_sam3_image_model
    from ds2d2_mm.models.detectors.sam3_prompted.vocab import write_tiny_bpe_vocab

    bigger = tmp_path / "bigger.txt.gz"
    write_tiny_bpe_vocab(bigger, words=["completely", "different", "vocabulary", "words"] * 50
                         + [f"w{'x' * i}" for i in range(200)])  # fmt: skip
    with pytest.raises(ValueError, match="text.vocab_size"):
        build_sam3_image_model("tiny", bpe_path=str(bigger))


def test_arch_errors():
    from ds2d2_mm.models.detectors.sam3_prompted.build import image_arch_config

    with pytest.raises(ValueError, match="unknown SAM3 image arch 'huge'"):
        image_arch_config("huge")
    with pytest.raises(ValueError, match="multiple of the ViT patch size 14"):
        image_arch_config("tiny", img_size=100)
    with pytest.raises(ValueError, match="missing keys"):
        image_arch_config({"img_size": 112})
    assert image_arch_config("tiny", img_size=224)["img_size"] == 224


@requires_sam3
def test_sam3_arch_matches_sam3s_own_builder(monkeypatch):
    """Every part built from the 'sam3' arch is what model_builder's _create_* functions build."""
    from sam3 import model_builder as mb
    from sam3.model import decoder as dec_mod
    from sam3.model import necks, vitdet
    from sam3.model import position_encoding as pe_mod

    from ds2d2_mm.models.detectors.sam3_prompted import build as b
    from ds2d2_mm.models.detectors.sam3_prompted.build import image_arch_config

    cfg = image_arch_config("sam3")
    # the ViT (446M parameters) cannot be built on the meta device: compare its arguments, and
    # the neck's, with a stand-in trunk of the right width
    calls: dict[str, list[dict]] = {"vit": [], "neck": [], "pe": []}

    class Trunk(torch.nn.Module):
        channel_list = [cfg["vit"]["embed_dim"]]

    def record(kind, factory):
        def make(*args, **kwargs):
            calls[kind].append(kwargs)
            return factory(*args, **kwargs)

        return make

    monkeypatch.setattr(vitdet, "ViT", record("vit", lambda **kw: Trunk()))
    monkeypatch.setattr(mb, "ViT", record("vit", lambda **kw: Trunk()))
    neck_cls = necks.Sam3DualViTDetNeck
    for module in (necks, mb):
        monkeypatch.setattr(module, "Sam3DualViTDetNeck", record("neck", neck_cls))
    for module in (pe_mod, mb):
        monkeypatch.setattr(module, "PositionEmbeddingSine",
                            record("pe", lambda **kw: torch.nn.Identity()))  # fmt: skip
    # sam3 precomputes the decoder's coordinates on "cuda" at build: use the meta device
    get_coords = dec_mod.TransformerDecoder._get_coords
    monkeypatch.setattr(dec_mod.TransformerDecoder, "_get_coords",
                        staticmethod(lambda h, w, device: get_coords(h, w, "meta")))  # fmt: skip

    def shapes(module):
        return {k: tuple(v.shape) for k, v in module.state_dict().items()}

    with torch.device("meta"):
        ours_vision = b._vision_backbone(cfg, False)
        theirs_vision = mb._create_vision_backbone(None, False)
        assert shapes(ours_vision) == shapes(theirs_vision)
        pairs = [
            (b._transformer(cfg), mb._create_sam3_transformer()),
            (b._dot_product_scoring(cfg), mb._create_dot_product_scoring()),
            (b._segmentation_head(cfg), mb._create_segmentation_head()),
            (b._geometry_encoder(cfg), mb._create_geometry_encoder()),
        ]
    for ours, theirs in pairs:
        assert shapes(ours) == shapes(theirs), type(theirs).__name__

    def plain(kwargs, drop=()):
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in kwargs.items() if k not in drop}  # fmt: skip

    ours_vit, theirs_vit = calls["vit"]
    assert plain(ours_vit) == plain(theirs_vit)
    ours_neck, theirs_neck = calls["neck"]
    assert plain(ours_neck, ("trunk", "position_encoding")) == plain(
        theirs_neck, ("trunk", "position_encoding"))  # fmt: skip
    # the position encodings differ only in the (lazily filled) cache
    ours_pe, theirs_pe = calls["pe"][0], calls["pe"][1]
    assert plain(ours_pe, ("precompute_resolution",)) == plain(
        theirs_pe, ("precompute_resolution",))  # fmt: skip
    text = cfg["text"]
    assert (text["width"], text["heads"], text["layers"]) == (1024, 16, 24)
    assert text["context_length"] == 32 and text["vocab_size"] == 49408  # VETextEncoder defaults


@requires_sam3
def test_checkpoint_loads_like_sam3s_own_loader(tiny_vocab, tmp_path, capsys):
    from sam3 import model_builder as mb

    from ds2d2_mm.models.detectors.sam3_prompted import (
        build_sam3_image_model,
        load_sam3_image_checkpoint,
    )

    torch.manual_seed(0)
    source = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    state = {f"detector.{k}": v for k, v in source.state_dict().items()}
    state["tracker.some.weight"] = torch.zeros(1)
    del state["detector.dot_prod_scoring.hs_proj.weight"]
    path = tmp_path / "sam3.pt"
    torch.save({"model": state}, path)

    torch.manual_seed(1)
    ours = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    report = load_sam3_image_checkpoint(ours, str(path))
    assert report.missing == ["dot_prod_scoring.hs_proj.weight"]
    assert report.unexpected == []
    assert "1 missing keys" in report.describe()
    torch.manual_seed(1)
    theirs = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    mb._load_checkpoint(theirs, str(path))
    for (k, a), (_, c) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(a, c), k


@requires_sam3
def test_checkpoint_errors_name_the_file(tiny_vocab, tmp_path):
    from ds2d2_mm.models.detectors.sam3_prompted import (
        build_sam3_image_model,
        load_sam3_image_checkpoint,
    )
    from ds2d2_mm.utils.errors import CheckpointError

    model = build_sam3_image_model("tiny", bpe_path=tiny_vocab)
    with pytest.raises(CheckpointError, match="not found"):
        load_sam3_image_checkpoint(model, str(tmp_path / "missing.pt"))
    other = tmp_path / "other.pt"
    torch.save({"model": {"backbone.x": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="no key contains 'detector'"):
        load_sam3_image_checkpoint(model, str(other))
    wrong = tmp_path / "wrong.pt"
    torch.save({"detector.transformer.decoder.query_embed.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(CheckpointError, match="query_embed.*shape mismatches|shape mismatches"):
        load_sam3_image_checkpoint(model, str(wrong))
