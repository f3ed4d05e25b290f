"""FORTE opc_ua[...] ID strings."""

from __future__ import annotations

import pytest

from drivers.errors import DriverConfigError
from drivers.opcua.addressing import BrowsePathElement, NodeIdAddress, NodeIdKind
from drivers.opcua.forte_id import ForteOpcUaAction, parse_forte_opcua_id


def test_read_with_endpoint_and_browse_path() -> None:
    """A remote READ keeps endpoint and browse path; bare names use namespace 1."""
    parsed = parse_forte_opcua_id("opc_ua[READ;opc.tcp://10.0.0.5:4840#;/Objects/Plant/1:Level]")
    assert parsed.action is ForteOpcUaAction.READ
    assert parsed.endpoint == "opc.tcp://10.0.0.5:4840"
    assert parsed.is_remote
    (pair,) = parsed.pairs
    assert pair.node_id is None
    assert pair.browse_path is not None
    assert pair.browse_path.elements == (
        BrowsePathElement(0, "Objects"),
        BrowsePathElement(1, "Plant"),
        BrowsePathElement(1, "Level"),
    )


def test_subscribe_with_node_id_form() -> None:
    """The ',ns:s=id' pair form yields a NodeId address."""
    parsed = parse_forte_opcua_id("opc_ua[SUBSCRIBE;opc.tcp://127.0.0.1:4841#;,2:s=Nivel]")
    assert parsed.action is ForteOpcUaAction.SUBSCRIBE
    assert parsed.addresses == (NodeIdAddress(NodeIdKind.STRING, "Nivel", 2),)


def test_several_pairs_prefer_node_id_when_both_given() -> None:
    """With path and NodeId in one pair the NodeId is the address; order is kept."""
    parsed = parse_forte_opcua_id(
        "opc_ua[WRITE;opc.tcp://h:4840#;/Objects/TAGS/TAG1,0:s=TAG1;/Objects/1:x;,1:i=13]"
    )
    assert [str(a) for a in parsed.addresses] == ["s=TAG1", "/Objects/1:x", "ns=1;i=13"]
    assert parsed.pairs[0].browse_path is not None


def test_local_id_without_endpoint_and_lenient_bare_node_id() -> None:
    """No endpoint means the local server; a bare '2:s=X' pair reads as a NodeId."""
    local = parse_forte_opcua_id("opc_ua[CREATE_METHOD;/Objects/4:skills/4:lock]")
    assert local.endpoint is None
    assert not local.is_remote
    bare = parse_forte_opcua_id("opc_ua[SUBSCRIBE;opc.tcp://127.0.0.1:4841#;2:s=AppliedDAC]")
    assert bare.addresses == (NodeIdAddress(NodeIdKind.STRING, "AppliedDAC", 2),)


def test_bracket_content_alone_and_call_method() -> None:
    """The layer parameters without the 'opc_ua[...]' wrapper parse the same."""
    parsed = parse_forte_opcua_id("CALL_METHOD;opc.tcp://h:4840#;/Objects/2:Pump/2:Start")
    assert parsed.action is ForteOpcUaAction.CALL_METHOD
    assert str(parsed.addresses[0]) == "/Objects/2:Pump/2:Start"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("opc_ua[FETCH;opc.tcp://h:1#;,1:i=1]", "unknown action 'FETCH'"),
        ("opc_ua[READ]", "at least one node pair"),
        ("opc_ua[READ;opc.tcp://h:4840;,1:i=1]", "must end with '#'"),
        ("opc_ua[READ;opc.tcp://h:4840#,1:i=1]", "expected ';' after"),
        ("opc_ua[READ;opc.tcp://h:4840#;]", "no node pair"),
        ("opc_ua[READ;opc.tcp://h:4840#;,ns=1;i=1]", "must look like"),
        ("opc_ua[READ;opc.tcp://h:4840#;;,1:i=1]", "node pair 1 is empty"),
        ("opc_ua[READ;opc.tcp://h:4840#;Objects/x]", "must start with '/'"),
        ("opc_ua[READ;opc.tcp://h:4840#;,1:i=x]", "numeric identifier"),
        ("opc_ua[READ;,1:i=1", "closing ']'"),
        ("modbus[READ;,1:i=1]", "not opc_ua"),
        ("opc_ua[READ;opc.tcp://#;,1:i=1]", "no host"),
    ],
)
def test_bad_ids_raise_clear_config_errors(text: str, fragment: str) -> None:
    """Malformed IDs raise DriverConfigError quoting the ID and the fault."""
    with pytest.raises(DriverConfigError, match=fragment):
        parse_forte_opcua_id(text)
