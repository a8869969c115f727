"""A minimal XML reader that remembers the 1-based line of every element (for error messages)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from xml.parsers import expat

from ...utils.errors import AnnotationError

__all__ = ["XmlElement", "read_xml"]


@dataclass
class XmlElement:
    """One XML element: tag, stripped text, children and the line its start tag is on."""

    tag: str
    line: int
    children: list[XmlElement] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> XmlElement | None:
        """The first direct child whose tag equals ``tag`` (case-insensitive), or ``None``."""
        tag = tag.lower()
        return next((c for c in self.children if c.tag.lower() == tag), None)

    def findall(self, tag: str) -> list[XmlElement]:
        """All direct children whose tag equals ``tag`` (case-insensitive)."""
        tag = tag.lower()
        return [c for c in self.children if c.tag.lower() == tag]


def read_xml(path: str | os.PathLike) -> XmlElement:
    """Parses the XML file ``path`` into an :class:`XmlElement` tree.

    Raises:
        AnnotationError: When the file is not well-formed XML (with the parser's line).
    """
    parser = expat.ParserCreate()
    stack: list[XmlElement] = []
    texts: list[list[str]] = []
    roots: list[XmlElement] = []

    def start(tag: str, _attrs: dict) -> None:
        element = XmlElement(tag=tag, line=parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(element)
        else:
            roots.append(element)
        stack.append(element)
        texts.append([])

    def end(_tag: str) -> None:
        element = stack.pop()
        element.text = "".join(texts.pop()).strip()

    def chars(data: str) -> None:
        if texts:
            texts[-1].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    with open(path, "rb") as f:
        data = f.read()
    try:
        parser.Parse(data, True)
    except expat.ExpatError as err:
        raise AnnotationError(path, f"not well-formed XML ({expat.ErrorString(err.code)})",
                              line=err.lineno) from None
    return roots[0]
