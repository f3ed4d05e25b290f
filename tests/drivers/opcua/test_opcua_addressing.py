"""NodeId and browse-path parsing."""

from __future__ import annotations

import uuid

import pytest

from drivers.errors import DriverConfigError
from drivers.opcua.addressing import (
    BrowsePath,
    BrowsePathElement,
    NodeIdAddress,
    NodeIdKind,
    parse_address,
    parse_browse_path,
    parse_node_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ns=2;s=Foo", NodeIdAddress(NodeIdKind.STRING, "Foo", 2)),
        ("ns=2;i=5", NodeIdAddress(NodeIdKind.NUMERIC, 5, 2)),
        ("i=2258", NodeIdAddress(NodeIdKind.NUMERIC, 2258, 0)),
        ("ns=3;s=a;b=c", NodeIdAddress(NodeIdKind.STRING, "a;b=c", 3)),
        (
            "ns=1;g=09087e75-8e5e-499b-954f-f2a9603db28a",
            NodeIdAddress(NodeIdKind.GUID, uuid.UUID("09087e75-8e5e-499b-954f-f2a9603db28a"), 1),
        ),
        ("ns=1;b=AAEC", NodeIdAddress(NodeIdKind.OPAQUE, b"\x00\x01\x02", 1)),
        ("nsu=urn:x;s=T", NodeIdAddress(NodeIdKind.STRING, "T", 0, "urn:x")),
    ],
)
def test_node_id_forms_parse(text: str, expected: NodeIdAddress) -> None:
    """Every NodeId spelling parses to the namespace and typed identifier it names."""
    assert parse_node_id(text) == expected


@pytest.mark.parametrize("text", ["ns=2;s=Foo", "i=2258", "nsu=urn:x;s=T", "ns=1;b=AAEC"])
def test_node_id_round_trips_through_str(text: str) -> None:
    """str() of a parsed NodeId gives back the canonical text."""
    assert str(parse_node_id(text)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("ns=x;i=1", "not a number"),
        ("ns=2", "';'"),
        ("ns=2;q=1", "i=, s=, g= or b="),
        ("ns=2;i=-1", "numeric identifier"),
        ("ns=2;g=nope", "GUID"),
        ("ns=2;b=!!", "base64"),
        ("ns=2;s=", "empty string"),
        ("ns=70000;i=1", "65535"),
    ],
)
def test_bad_node_ids_name_the_fault(text: str, fragment: str) -> None:
    """A malformed NodeId raises DriverConfigError saying what is wrong."""
    with pytest.raises(DriverConfigError, match=fragment):
        parse_node_id(text)


def test_browse_path_parses_namespaces_and_names() -> None:
    """A browse path keeps each hop's namespace; Objects is namespace 0."""
    path = parse_browse_path("/Objects/2:Plant/2:Pump1/2:Speed")
    assert path.elements == (
        BrowsePathElement(0, "Objects"),
        BrowsePathElement(2, "Plant"),
        BrowsePathElement(2, "Pump1"),
        BrowsePathElement(2, "Speed"),
    )
    assert str(path) == "/Objects/2:Plant/2:Pump1/2:Speed"
    assert path.parent == BrowsePath(path.elements[:-1])


def test_browse_path_default_namespace_and_escapes() -> None:
    """Unprefixed hops take the default namespace; '&' escapes separators."""
    path = parse_browse_path("/Objects/Tank&/A/3:x&:y", default_namespace=1)
    assert path.elements[1] == BrowsePathElement(1, "Tank/A")
    assert path.elements[2] == BrowsePathElement(3, "x:y")
    assert parse_browse_path(str(path), default_namespace=1) == path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Objects/2:A", "must start with '/'"),
        ("/Objects//2:A", "element 2 is empty"),
        ("/Objects/2:", "element 2 has no name"),
        ("/Objects/2:A&", "dangling"),
    ],
)
def test_bad_browse_paths_name_the_element(text: str, fragment: str) -> None:
    """A malformed browse path raises DriverConfigError naming the element."""
    with pytest.raises(DriverConfigError, match=fragment):
        parse_browse_path(text)


def test_parse_address_dispatches_on_leading_slash() -> None:
    """A leading '/' means a browse path; anything else a NodeId."""
    assert isinstance(parse_address("/Objects/2:A"), BrowsePath)
    assert isinstance(parse_address("ns=2;s=A"), NodeIdAddress)


def test_root_path_has_no_parent() -> None:
    """Asking for the parent of a one-hop path is a config error."""
    with pytest.raises(DriverConfigError, match="no parent"):
        _ = parse_browse_path("/Objects").parent
