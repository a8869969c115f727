"""The BPE vocabulary of SAM3's text encoder: find CLIP's file, or write a tiny one for tests.

SAM3's tokenizer (``sam3.model.tokenizer_ve.SimpleTokenizer``) reads CLIP's gzipped merge list
``bpe_simple_vocab_16e6.txt.gz``: a header line, then one merge ``"a b"`` per line, of which the
first 48,894 are used. The vocabulary is the 256 byte symbols, the same with ``</w>`` (end of
word), one symbol per merge and the two special tokens: 256 + 256 + 48,894 + 2 = 49,408 ids.

sam3 0.1.4's wheel does not ship the file (its ``build_sam3_image_model`` looks for it in a
``assets/`` folder that is not installed). :func:`resolve_bpe_path` finds it:

1. the path the user gives (e.g. next to ``sam3.pt``); it must exist;
2. sam3's own ``assets/`` folder, should a later wheel ship it;
3. the copy that ``open_clip_torch`` ships (``open_clip/bpe_simple_vocab_16e6.txt.gz``, the
   ``sam3`` extra installs it), accepted only when its sha256 is :data:`CLIP_BPE_SHA256`.

:func:`write_tiny_bpe_vocab` writes a vocabulary in the same format whose merges are learned
(plain BPE: repeatedly merge the most frequent adjacent pair) from a few words only: those of
the built-in synthetic scenes', DIOR's and DOTA's class names. Each of those words is then one
token, and any other text still tokenizes (into single letters). The ``tiny`` image model's text
encoder has :data:`TINY_BPE_VOCAB_SIZE` ids to match.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from ....datasets.classes import DIOR_CLASSES, DOTA_CLASSES, SYNTHETIC_CLASSES
from ....utils.io import atomic_write_bytes

__all__ = [
    "BPE_FILENAME",
    "CLIP_BPE_SHA256",
    "CLIP_BPE_VOCAB_SIZE",
    "DIOR_PROMPTS",
    "TINY_BPE_VOCAB_SIZE",
    "TINY_VOCAB_WORDS",
    "BpeVocabNotFoundError",
    "learn_bpe_merges",
    "resolve_bpe_path",
    "tiny_bpe_path",
    "write_tiny_bpe_vocab",
]

#: File name of CLIP's BPE merge list, as SAM3 and open_clip name it.
BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
#: sha256 of CLIP's ``bpe_simple_vocab_16e6.txt.gz`` (the copy in open_clip_torch 3.3.0: 262,146
#: lines, first merge ``"i n"``, last merge used by SAM3's tokenizer ``"jeky ll</w>"``).
CLIP_BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
#: Token ids of SAM3's tokenizer with CLIP's file (the text encoder's ``vocab_size``).
CLIP_BPE_VOCAB_SIZE = 49408
#: First line of the merge list (SimpleTokenizer skips it).
_HEADER = "#version: 0.2"
#: 256 byte symbols, the same with ``</w>``, and ``<start_of_text>`` / ``<end_of_text>``.
_BASE_SYMBOLS = 2 * 256
_SPECIAL_TOKENS = 2
_END_OF_WORD = "</w>"

#: Natural-language prompts for DIOR's class names (which run words together): SAM3 reads text.
DIOR_PROMPTS: dict[str, str] = {
    "baseballfield": "baseball field",
    "basketballcourt": "basketball court",
    "expressway-service-area": "expressway service area",
    "expressway-toll-station": "expressway toll station",
    "golffield": "golf field",
    "groundtrackfield": "ground track field",
    "storagetank": "storage tank",
    "tenniscourt": "tennis court",
    "trainstation": "train station",
}


def _words(texts: Iterable[str]) -> list[str]:
    """The lower-case letter runs of ``texts`` (how SAM3's tokenizer splits plain names)."""
    return [w for t in texts for w in re.findall(r"[^\W\d_]+", t.lower())]


#: The words the tiny vocabulary makes single tokens: every word of the synthetic, DIOR and
#: DOTA class names and of :data:`DIOR_PROMPTS`.
TINY_VOCAB_WORDS: tuple[str, ...] = tuple(
    sorted(set(_words([*SYNTHETIC_CLASSES, *DIOR_CLASSES, *DOTA_CLASSES, *DIOR_PROMPTS.values()])))
)
#: Token ids of SAM3's tokenizer with the default tiny vocabulary (checked by a test).
TINY_BPE_VOCAB_SIZE = 682


class BpeVocabNotFoundError(FileNotFoundError):
    """No BPE vocabulary file for SAM3's text encoder could be found."""


def learn_bpe_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """BPE merges, most frequent pair first, until every word of ``words`` is one symbol.

    Words are split as SAM3's tokenizer splits them: single characters, the last one marked
    with ``</w>``. Ties between equally frequent pairs go to the smaller pair, so the result
    depends only on the set and counts of ``words``.
    """
    counts = Counter(w for w in words if w)
    vocab = {tuple(w[:-1]) + (w[-1] + _END_OF_WORD,): n for w, n in counts.items()}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, n in vocab.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += n
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for symbols, n in vocab.items():
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = n
        vocab = merged


def write_tiny_bpe_vocab(path: str | os.PathLike, words: Sequence[str] = TINY_VOCAB_WORDS) -> int:
    """Write a tiny BPE vocabulary for ``words`` to ``path`` (gzipped, CLIP's format).

    Returns:
        The number of token ids SAM3's tokenizer will have with it (the text encoder's
        ``vocab_size`` must be at least this): ``512 + len(merges) + 2``.
    """
    merges = learn_bpe_merges(_words(words))
    # no trailing newline: SimpleTokenizer would read the empty last line as one more symbol
    text = "\n".join([_HEADER, *(f"{a} {b}" for a, b in merges)])
    # no name and mtime 0 in the gzip header: the same bytes on every run and at every path
    atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))
    return _BASE_SYMBOLS + len(merges) + _SPECIAL_TOKENS


def tiny_bpe_path(cache_dir: str | os.PathLike | None = None) -> str:
    """The default tiny vocabulary, written on first use into ``cache_dir``.

    ``cache_dir`` defaults to ``$DS2D2_CACHE/sam3`` or ``~/.cache/ds2d2_mm/sam3``. The file is
    rewritten when its content is not the default tiny vocabulary's.
    """
    root = cache_dir or os.path.join(
        os.environ.get("DS2D2_CACHE", os.path.join(Path.home(), ".cache", "ds2d2_mm")), "sam3"
    )
    path = Path(root) / "tiny_bpe_simple_vocab.txt.gz"
    expected = "\n".join([_HEADER, *(f"{a} {b}" for a, b in learn_bpe_merges(TINY_VOCAB_WORDS))])
    try:
        current = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError):
        current = None
    if current != expected:
        write_tiny_bpe_vocab(path)
    return str(path)


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_file(package: str, name: str) -> str | None:
    """``name`` inside the installed ``package`` (without importing it), or ``None``."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _sam3_assets_file() -> str | None:
    """``assets/bpe_simple_vocab_16e6.txt.gz`` where sam3's model builder looks for it."""
    try:
        spec = importlib.util.find_spec("sam3")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = os.path.normpath(os.path.join(folder, "..", "assets", BPE_FILENAME))
        if os.path.isfile(candidate):
            return candidate
    return None


def resolve_bpe_path(user_path: str | None) -> str:
    """The BPE vocabulary file for SAM3's text encoder.

    Args:
        user_path: A file given by the user (config key ``bpe_path``), used as it is when given.

    Raises:
        BpeVocabNotFoundError: ``user_path`` does not exist, or none was given and neither
            sam3's assets nor open_clip_torch hold CLIP's file; the message says where to put it.
    """
    if user_path is not None:
        if not os.path.isfile(user_path):
            raise BpeVocabNotFoundError(
                f"SAM3 BPE vocabulary not found: bpe_path={user_path!r}. Put CLIP's "
                f"{BPE_FILENAME} there (e.g. next to sam3.pt), or leave bpe_path unset to use "
                f"the copy that open_clip_torch ships (`pip install -e .[sam3]`)."
            )
        return user_path
    sam3_copy = _sam3_assets_file()
    if sam3_copy is not None:
        return sam3_copy
    clip_copy = _package_file("open_clip", BPE_FILENAME)
    if clip_copy is not None:
        digest = _sha256(clip_copy)
        if digest == CLIP_BPE_SHA256:
            return clip_copy
        found = (
            f" (open_clip's copy {clip_copy!r} has sha256 {digest}, not CLIP's {CLIP_BPE_SHA256})"
        )
    else:
        found = " (sam3's wheel does not ship it, and open_clip_torch is not installed)"
    raise BpeVocabNotFoundError(
        f"no BPE vocabulary for SAM3's text encoder{found}. Either install the sam3 extra "
        f"(`pip install -e .[sam3]`, which brings open_clip_torch and its {BPE_FILENAME}), or put "
        f"CLIP's {BPE_FILENAME} (sha256 {CLIP_BPE_SHA256}) next to your sam3.pt and give its "
        f"path as bpe_path (config key model.bpe_path)."
    )
