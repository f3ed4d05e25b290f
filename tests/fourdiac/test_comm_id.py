"""FORTE communication ID strings: layer stacks, bracket matching, ip parameters."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.fourdiac.comm_id import (
    CommId,
    CommIdError,
    CommLayer,
    IpEndpoint,
    ip_endpoint,
    parse_comm_id,
    parse_ip_params,
)


@pytest.mark.parametrize(("text", "layers"), [
    ("fbdk[].ip[239.192.0.2:61499]", [("fbdk", ""), ("ip", "239.192.0.2:61499")]),
    ("raw[].mqtt[tcp://localhost:1883, clientID, topic]",
     [("raw", ""), ("mqtt", "tcp://localhost:1883, clientID, topic")]),
    ("fbdk[].mqtt[tcp://h:1883, c, a/b.c]", [("fbdk", ""), ("mqtt", "tcp://h:1883, c, a/b.c")]),
    ("loc[name]", [("loc", "name")]),
    ("opc_ua[READ;opc.tcp://h:4840#;/Objects/1:x]",
     [("opc_ua", "READ;opc.tcp://h:4840#;/Objects/1:x")]),
    ("modbus[tcp:127.0.0.1:502::20000:h0..3:]", [("modbus", "tcp:127.0.0.1:502::20000:h0..3:")]),
    ("fbdk[].tsn[239.1.0.1:48401:3:5]", [("fbdk", ""), ("tsn", "239.1.0.1:48401:3:5")]),
    ("opc_ua[READ;opc.tcp://h:4840#;/Objects/1:arr[2]].raw[]",
     [("opc_ua", "READ;opc.tcp://h:4840#;/Objects/1:arr[2]"), ("raw", "")]),
    ("ip[[::1]:61499]", [("ip", "[::1]:61499")]),
    ("  loc[x]  ", [("loc", "x")]),
])
def test_parse_layer_stacks(text: str, layers: list[tuple[str, str]]) -> None:
    """IDs split into layers outer first, with parameters kept verbatim up to the matching ']'."""
    parsed = parse_comm_id(text)
    assert [(layer.name, layer.params) for layer in parsed.layers] == layers
    assert parse_comm_id(str(parsed)) == parsed


def test_bare_address_means_fbdk_over_ip() -> None:
    """An ID without brackets is FORTE's shorthand for fbdk[].ip[<ID>]."""
    parsed = parse_comm_id("239.192.0.2:61499")
    assert parsed == parse_comm_id("fbdk[].ip[239.192.0.2:61499]")
    assert str(parsed) == "fbdk[].ip[239.192.0.2:61499]"
    assert parse_comm_id("n1", default_stack=("loc",)) == CommId((CommLayer("loc", "n1"),))


def test_accessors() -> None:
    """top, bottom, names and layer() give the parts callers need."""
    parsed = parse_comm_id("fbdk[].ip[localhost:61500]")
    assert parsed.top == CommLayer("fbdk")
    assert parsed.bottom.params == "localhost:61500"
    assert parsed.names == ("fbdk", "ip")
    assert parsed.layer("mqtt") is None


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("fbdk[].ip[1.2.3.4:5", r"'\[' of layer 'ip' at position 9 .* never closed"),
    ("fbdk[]ip[x]", r"expected '\.' or the end after layer 'fbdk' at position 6"),
    ("fbdk[].", "ends with '.'"),
    ("fbdk[].ip", r"layer 'ip' at position 7 .* has no \[params\]"),
    ("[x]", "bad layer name ''"),
    ("fb dk[]", "bad layer name 'fb dk'"),
    ("a]b", r"layer 'a\]b' at position 0 .* has no \[params\]"),
    ("fbdk[]].ip[]", r"after layer 'fbdk' at position 6 of .*, got '\]'"),
])
def test_malformed_ids_name_the_bad_part(text: str, message: str) -> None:
    """Broken IDs raise CommIdError (a ValueError) saying where and what is wrong."""
    with pytest.raises(CommIdError, match=message) as info:
        parse_comm_id(text)
    assert isinstance(info.value, ValueError)


def test_layers_validate_on_construction() -> None:
    """A CommLayer built in code cannot hold a name or params that would not parse back."""
    with pytest.raises(CommIdError, match="bad layer name"):
        CommLayer("a.b")
    with pytest.raises(CommIdError, match="unclosed"):
        CommLayer("ip", "[::1")
    with pytest.raises(CommIdError, match="unmatched"):
        CommLayer("ip", "x]")
    with pytest.raises(CommIdError, match="at least one layer"):
        CommId(())


@pytest.mark.parametrize(("params", "endpoint"), [
    ("239.192.0.2:61499", IpEndpoint("239.192.0.2", 61499)),
    ("localhost:61499", IpEndpoint("localhost", 61499)),
    ("plc-1.example.com:502", IpEndpoint("plc-1.example.com", 502)),
    ("[::1]:4840", IpEndpoint("::1", 4840)),
    ("[fe80::1%eth0]:1", IpEndpoint("fe80::1%eth0", 1)),
    ("239.0.0.1:61000@192.168.0.2", IpEndpoint("239.0.0.1", 61000, "192.168.0.2")),
    ("0.0.0.0:0", IpEndpoint("0.0.0.0", 0)),
])
def test_ip_params(params: str, endpoint: IpEndpoint) -> None:
    """ip[...] params split into host, port and optional @interface; str() writes them back."""
    assert parse_ip_params(params) == endpoint
    assert parse_ip_params(str(endpoint)) == endpoint


@pytest.mark.parametrize(("params", "message"), [
    ("1.2.3.4", "no ':'"),
    (":61499", "host before ':' is empty"),
    ("1.2.3.4:", "bad port ''"),
    ("1.2.3.4:65536", "bad port '65536'"),
    ("1.2.3.4:6x", "bad port '6x'"),
    ("1.2.3.4:+80", r"bad port '\+80'"),
    ("300.1.1.1:80", "bad IPv4 address '300.1.1.1'"),
    ("1.2.3:80", "bad IPv4 address '1.2.3'"),
    ("::1:80", r"write IPv6 addresses as \[addr\]:port"),
    ("[::1:80", "never closed"),
    ("[::1]80", "expected ':port'"),
    ("[::g]:80", "bad IPv6 address '::g'"),
    ("bad host:80", "bad host name 'bad host'"),
    ("h:80@", "bad interface ''"),
])
def test_bad_ip_params_name_the_bad_part(params: str, message: str) -> None:
    """Each malformed part of ip[...] params gets its own clear message."""
    with pytest.raises(CommIdError, match=message):
        parse_ip_params(params)


def test_ip_endpoint_of_an_id() -> None:
    """ip_endpoint finds the ip layer of a stack, and says so when there is none."""
    assert ip_endpoint(parse_comm_id("239.192.0.2:61500")).is_multicast
    assert not ip_endpoint(parse_comm_id("fbdk[].ip[localhost:1]")).is_multicast
    with pytest.raises(CommIdError, match="no ip layer"):
        ip_endpoint(parse_comm_id("loc[x]"))


# ----------------------------------------------------------------------------- properties

names = st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)
flat = st.text(st.characters(blacklist_characters="[]"), max_size=12)
params = st.recursive(flat, lambda inner: st.builds(
    lambda a, b, c: f"{a}[{b}]{c}", flat, inner, flat), max_leaves=4)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.builds(CommLayer, names, params), min_size=1, max_size=4))
def test_rendered_stacks_parse_back(layers: list[CommLayer]) -> None:
    """Any stack of valid layers, written out, parses back to the same layers."""
    comm_id = CommId(tuple(layers))
    assert parse_comm_id(str(comm_id)) == comm_id


@settings(max_examples=3000, deadline=None)
@given(st.text(st.sampled_from("ab_.[]:;,@ 0189/#%"), max_size=40) | st.text(max_size=40))
def test_random_ids_only_raise_comm_id_error(text: str) -> None:
    """Any string parses or raises CommIdError; a parsed ID re-parses to itself."""
    with contextlib.suppress(CommIdError):
        parsed = parse_comm_id(text)
        assert parse_comm_id(str(parsed)) == parsed
        for layer in parsed.layers:
            with contextlib.suppress(CommIdError):
                endpoint = parse_ip_params(layer.params)
                assert parse_ip_params(str(endpoint)) == endpoint


@settings(max_examples=2000, deadline=None)
@given(st.text(st.sampled_from("0123456789.:[]@abcdef%-x "), max_size=30) | st.text(max_size=30))
def test_random_ip_params_only_raise_comm_id_error(text: str) -> None:
    """Any ip params parse into a valid endpoint or raise CommIdError."""
    with contextlib.suppress(CommIdError):
        endpoint = parse_ip_params(text)
        assert 0 <= endpoint.port <= 65535
        assert endpoint.host
