"""Node addresses: NodeId strings and absolute browse paths, parsed once into frozen values.

Two spellings reach the driver:

* NodeIds in the OPC UA string form: ``ns=2;s=Foo``, ``ns=2;i=5``, ``i=2258``,
  ``ns=1;g=<uuid>``, ``ns=1;b=<base64>`` and ``nsu=<uri>;s=Foo`` (namespace by URI,
  resolved against the server's namespace array at connect time);
* absolute browse paths from the Root folder: ``/Objects/2:Plant/2:Pump1/2:Speed``.
  Each element is ``[ns:]name``; ``&`` escapes the next character (``2:a&/b`` is the
  name ``a/b``). An element without a namespace prefix uses ``default_namespace``,
  except the standard Root children (``Objects``, ``Types``, ``Views``) which are
  always namespace 0.

Keeping addresses as values (not asyncua objects) lets configuration be validated
before any connection exists and lets the session cache resolutions per address.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from enum import Enum

from drivers.errors import DriverConfigError

__all__ = [
    "BrowsePath",
    "BrowsePathElement",
    "NodeAddress",
    "NodeIdAddress",
    "NodeIdKind",
    "parse_address",
    "parse_browse_path",
    "parse_node_id",
]

_ROOT_CHILDREN = frozenset({"Objects", "Types", "Views"})
_NAMESPACE_PREFIX = re.compile(r"^(\d+):")


class NodeIdKind(Enum):
    """The identifier type of a NodeId (the letter before ``=``)."""

    NUMERIC = "i"
    STRING = "s"
    GUID = "g"
    OPAQUE = "b"


@dataclass(frozen=True, slots=True)
class NodeIdAddress:
    """A NodeId given by namespace index (or URI) and typed identifier."""

    kind: NodeIdKind
    identifier: int | str | uuid.UUID | bytes
    namespace_index: int = 0
    namespace_uri: str | None = None

    def __str__(self) -> str:
        if self.kind is NodeIdKind.OPAQUE:
            assert isinstance(self.identifier, bytes)
            ident = base64.b64encode(self.identifier).decode("ascii")
        else:
            ident = str(self.identifier)
        body = f"{self.kind.value}={ident}"
        if self.namespace_uri is not None:
            return f"nsu={self.namespace_uri};{body}"
        if self.namespace_index:
            return f"ns={self.namespace_index};{body}"
        return body


@dataclass(frozen=True, slots=True)
class BrowsePathElement:
    """One hop of a browse path: a qualified browse name."""

    namespace_index: int
    name: str

    def __str__(self) -> str:
        escaped = re.sub(r"([/&:.<>#!])", r"&\1", self.name)
        return f"{self.namespace_index}:{escaped}"


@dataclass(frozen=True, slots=True)
class BrowsePath:
    """An absolute browse path from the Root folder, e.g. ``/Objects/2:Plant/2:Speed``."""

    elements: tuple[BrowsePathElement, ...]

    def __str__(self) -> str:
        return "/" + "/".join(
            el.name if el.namespace_index == 0 and el.name in _ROOT_CHILDREN else str(el)
            for el in self.elements
        )

    @property
    def parent(self) -> BrowsePath:
        """The path one hop up (the object owning a method or variable)."""
        if len(self.elements) < 2:
            raise DriverConfigError(f"browse path {self} has no parent below Root")
        return BrowsePath(self.elements[:-1])


NodeAddress = NodeIdAddress | BrowsePath
"""Anything the session can resolve to a NodeId."""


def parse_node_id(text: str) -> NodeIdAddress:
    """Parse the OPC UA string form of a NodeId; raise DriverConfigError naming the fault."""
    raw = text.strip()
    if not raw:
        raise DriverConfigError("empty NodeId")
    namespace_index = 0
    namespace_uri: str | None = None
    body = raw
    if raw.startswith("ns=") or raw.startswith("nsu="):
        head, sep, body = raw.partition(";")
        if not sep or not body:
            raise DriverConfigError(f"NodeId {text!r}: expected ';' after the namespace")
        key, _, value = head.partition("=")
        if key == "ns":
            if not value.isdigit():
                raise DriverConfigError(
                    f"NodeId {text!r}: namespace index {value!r} is not a number"
                )
            namespace_index = int(value)
            if namespace_index > 0xFFFF:
                raise DriverConfigError(f"NodeId {text!r}: namespace index above 65535")
        else:
            if not value:
                raise DriverConfigError(f"NodeId {text!r}: empty namespace URI")
            namespace_uri = value
    letter, sep, ident = body.partition("=")
    if not sep or letter not in {k.value for k in NodeIdKind}:
        raise DriverConfigError(f"NodeId {text!r}: expected i=, s=, g= or b= before the identifier")
    kind = NodeIdKind(letter)
    identifier: int | str | uuid.UUID | bytes
    if kind is NodeIdKind.NUMERIC:
        if not ident.isdigit() or int(ident) > 0xFFFFFFFF:
            raise DriverConfigError(f"NodeId {text!r}: numeric identifier must be 0..4294967295")
        identifier = int(ident)
    elif kind is NodeIdKind.STRING:
        if not ident:
            raise DriverConfigError(f"NodeId {text!r}: empty string identifier")
        identifier = ident
    elif kind is NodeIdKind.GUID:
        try:
            identifier = uuid.UUID(ident)
        except ValueError as exc:
            raise DriverConfigError(f"NodeId {text!r}: {ident!r} is not a GUID") from exc
    else:
        try:
            identifier = base64.b64decode(ident, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DriverConfigError(f"NodeId {text!r}: {ident!r} is not base64") from exc
    return NodeIdAddress(kind, identifier, namespace_index, namespace_uri)


def _split_path(text: str) -> list[str]:
    """Split on unescaped '/', keeping '&' escapes for the element parser."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("&" + char)
            escaped = False
        elif char == "&":
            escaped = True
        elif char == "/":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise DriverConfigError(f"browse path {text!r}: dangling '&' escape at the end")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"&(.)", r"\1", text)


def parse_browse_path(text: str, *, default_namespace: int = 0) -> BrowsePath:
    """Parse ``/Objects/2:Plant/2:Speed``; raise DriverConfigError naming the bad element."""
    raw = text.strip()
    if not raw.startswith("/"):
        raise DriverConfigError(f"browse path {text!r}: must start with '/' (absolute from Root)")
    pieces = _split_path(raw[1:])
    elements: list[BrowsePathElement] = []
    for position, piece in enumerate(pieces, start=1):
        if not piece:
            raise DriverConfigError(f"browse path {text!r}: element {position} is empty")
        match = _NAMESPACE_PREFIX.match(piece)
        if match:
            namespace = int(match.group(1))
            name = _unescape(piece[match.end() :])
        else:
            name = _unescape(piece)
            namespace = 0 if position == 1 and name in _ROOT_CHILDREN else default_namespace
        if not name:
            raise DriverConfigError(f"browse path {text!r}: element {position} has no name")
        if namespace > 0xFFFF:
            raise DriverConfigError(f"browse path {text!r}: namespace index above 65535")
        elements.append(BrowsePathElement(namespace, name))
    return BrowsePath(tuple(elements))


def parse_address(text: str, *, default_namespace: int = 0) -> NodeAddress:
    """Parse either spelling: a leading '/' means a browse path, anything else a NodeId."""
    stripped = text.strip()
    if stripped.startswith("/"):
        return parse_browse_path(stripped, default_namespace=default_namespace)
    return parse_node_id(stripped)
