"""Safe XML reading for 4diac files, with the source line of every element.

4diac IDE writes `.fbt/.adp/.dtp/.sub/.sys` as XML, some with a
`<!DOCTYPE ... SYSTEM "http://...">` line. The parser is defusedxml's (no entity
expansion, no external entities, nothing fetched); the DOCTYPE itself is allowed
and ignored. Each element remembers its file and line so every reader error can
name `file:line (element/attribute)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from testbed.errors import SourceLocation, TypeLibraryError

__all__ = ["XmlElement", "parse_xml_file", "parse_xml_text"]


@dataclass(slots=True, eq=False)
class XmlElement:
    """One element: tag, attributes, children in document order, text, file and line."""

    tag: str
    attrib: dict[str, str]
    file: str
    line: int
    children: list[XmlElement] = field(default_factory=list)
    text: str = ""

    # --- lookup -------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrib.get(name, default)

    def require(self, name: str) -> str:
        """Attribute `name`; a missing or empty one is a TypeLibraryError at this element."""
        value = self.attrib.get(name)
        if value is None or not value.strip():
            raise self.error(f"<{self.tag}> lacks attribute {name}", name)
        return value

    def find(self, tag: str) -> XmlElement | None:
        """The first direct child called `tag`."""
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[XmlElement]:
        """Direct children called `tag`, in document order."""
        return [c for c in self.children if c.tag == tag]

    def section(self, tag: str, item: str) -> list[XmlElement]:
        """The `item` children of the first `tag` child (`InputVars` -> `VarDeclaration`s)."""
        holder = self.find(tag)
        return holder.findall(item) if holder is not None else []

    def iter(self, tag: str | None = None) -> Iterator[XmlElement]:
        """This element and all descendants (optionally only those called `tag`)."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    # --- errors -------------------------------------------------------------------

    def location(self, attribute: str | None = None) -> SourceLocation:
        what = f"<{self.tag}>" if attribute is None else f"<{self.tag}> {attribute}"
        name = self.attrib.get("Name")
        if name and attribute != "Name":
            what += f" of {name!r}" if attribute else f" {name!r}"
        return SourceLocation(self.file, self.line, field=what)

    def error(self, message: str, attribute: str | None = None) -> TypeLibraryError:
        """A TypeLibraryError naming this element's file, line and (optionally) attribute."""
        return TypeLibraryError(message, self.location(attribute))


class _LineTreeBuilder:
    """An ElementTree parser target that builds `XmlElement`s with expat's line numbers."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.expat: Any = None  # the expat parser, set once the XMLParser exists
        self.stack: list[XmlElement] = []
        self.root: XmlElement | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        line = int(self.expat.CurrentLineNumber) if self.expat is not None else 0
        elem = XmlElement(tag, dict(attrib), self.file, line)
        if self.stack:
            self.stack[-1].children.append(elem)
        elif self.root is None:
            self.root = elem
        self.stack.append(elem)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1].text += text

    def close(self) -> XmlElement | None:
        return self.root


def parse_xml_text(data: bytes | str, file: str) -> XmlElement:
    """Parse XML text safely; `file` names it in errors. Returns the root element."""
    builder = _LineTreeBuilder(file)
    parser = DefusedXMLParser(target=builder, forbid_dtd=False, forbid_entities=True,
                              forbid_external=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        parser.close()
    except DefusedXmlException as exc:
        raise TypeLibraryError(f"forbidden XML construct: {exc}",
                               SourceLocation(file, int(parser.parser.CurrentLineNumber))) \
            from exc
    except SyntaxError as exc:  # xml.etree.ElementTree.ParseError
        position = getattr(exc, "position", None)
        raise TypeLibraryError(f"malformed XML: {exc}",
                               SourceLocation(file, position[0] if position else None)) from exc
    if builder.root is None:
        raise TypeLibraryError("empty XML document", SourceLocation(file))
    return builder.root


def parse_xml_file(path: str | Path) -> XmlElement:
    """Read and parse one file; unreadable files are TypeLibraryErrors naming the path."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TypeLibraryError(f"cannot read file: {exc.strerror}", SourceLocation(str(p))) \
            from exc
    return parse_xml_text(data, str(p))
