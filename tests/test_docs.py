"""The README and the docs pages point at things that exist.

Every relative markdown link (and its ``#anchor``, against the target page's headings), every repo
path written in the text (``ds2d2_mm/...``, ``configs/...``, ``tools/...``, ``tests/...``,
``docs/...``, ``requirements/...``; paths with a glob or a placeholder are left out) and every
dotted ``ds2d2_mm.`` name resolves in the checkout. The README stays an overview: at most about
150 lines, the two newcomer commands first. Reads files only (no imports), well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Pages checked: the README, the docs pages and the configs folders' READMEs.
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"),
                *(REPO / "configs").rglob("README.md")])
README_MAX_LINES = 160

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_LINK = re.compile(r"\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
_ROOTS = r"(?:ds2d2_mm|configs|tools|tests|docs|requirements|\.ci)"
_PATH = re.compile(rf"(?<![\w./:-]){_ROOTS}/[\w./-]*|(?<![\w./:-])\.\./[\w./-]+")
_DOTTED = re.compile(r"(?<![\w./-])ds2d2_mm(?:\.\w+)+")
#: A path followed by one of these is a pattern (``configs/demo/*_rgbn.py``, ``{a,b}``, ``<x>``).
_PATTERN_NEXT = set("*{<[")
#: The word before a code span that names another project: ``owner/repo `path` `` or a
#: CamelCase / capitalised project name (``MMRazor `configs/...` ``); its paths are not ours.
_FOREIGN = re.compile(r"(?:[\w.-]+/[\w.-]+|[A-Z]{2}\w*|\w*[a-z][A-Z]\w*) `$")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*?|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The heading anchors of a markdown page (fenced code left out)."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {github_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.+?)\s*$", text, re.M)}


def broken_links(page: Path, text: str) -> list[str]:
    """Relative links of ``text`` (the content of ``page``) whose file or anchor is missing."""
    bad = []
    for target in _LINK.findall(_FENCE.sub("", text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target} (no such file or folder)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    return bad


def missing_paths(page: Path, text: str) -> list[str]:
    """Repo paths written in ``text`` that do not exist (``../x`` relative to ``page``)."""
    bad = []
    for m in _PATH.finditer(text):
        if m.end() < len(text) and text[m.end()] in _PATTERN_NEXT:
            continue
        if _FOREIGN.search(text[max(0, m.start() - 60):m.start()]):
            continue
        token = m.group(0).rstrip(".")
        base = page.parent if token.startswith("../") else REPO
        if not (base / token).exists():
            bad.append(token)
    return bad


def missing_names(text: str) -> list[str]:
    """Dotted ``ds2d2_mm.`` names whose module is missing or does not mention the attribute."""
    bad = []
    for dotted in _DOTTED.findall(text):
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            base = REPO.joinpath(*parts[:n])
            source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            if source.is_file():
                rest = parts[n:]
                if rest and not re.search(rf"\b{re.escape(rest[0])}\b", source.read_text()):
                    bad.append(dotted)
                break
        else:
            bad.append(dotted)
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_paths_and_names_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    problems = broken_links(page, text) + missing_paths(page, text) + missing_names(text)
    assert not problems, f"{page.relative_to(REPO)}: " + "; ".join(problems)


def test_checker_finds_what_is_missing(tmp_path: Path) -> None:
    """The checks above fail on a broken link, a wrong anchor, a missing path and name."""
    page = REPO / "docs" / "x.md"  # never written: only its folder matters
    text = ("[a](get_started.md) [b](no_such_page.md) [c](../README.md#no-such-heading)\n"
            "[d](https://example.org/x.md) `ds2d2_mm/models/no_such.py` `configs/demo/*_x.py`\n"
            "`tools/train.py`. `ds2d2_mm.models.distillers.spectral_distiller.SpectralDistiller`\n"
            "other/repo `configs/theirs.py`, MMRazor `configs/theirs.py`, in `configs/mine.py`\n"
            "`ds2d2_mm.models.no_such_module.x` `ds2d2_mm.models.distillers.NoSuchName`\n")
    assert broken_links(page, text) == [
        "no_such_page.md (no such file or folder)",
        "../README.md#no-such-heading (no heading #no-such-heading in README.md)"]
    assert missing_paths(page, text) == ["ds2d2_mm/models/no_such.py", "configs/mine.py"]
    assert missing_names(text) == ["ds2d2_mm.models.no_such_module.x",
                                   "ds2d2_mm.models.distillers.NoSuchName"]
    assert github_slug("Cross-modal distillation (RGB teacher, `x`)") == \
        "cross-modal-distillation-rgb-teacher-x"


def test_readme_is_an_overview_with_the_newcomer_commands_first() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections and sections[0].startswith("Newcomer"), sections
    first = text.split("\n## ")[1]
    assert "make demo" in first and "make test" in first
