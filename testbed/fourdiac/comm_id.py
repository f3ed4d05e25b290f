"""FORTE communication ID strings: `{layer[params].}layer[params]`, outer layer first.

A comm FB's `ID` selects its layer stack, e.g. `fbdk[].ip[239.192.0.2:61499]`
(ASN.1 over UDP multicast), `raw[].mqtt[tcp://localhost:1883, client, topic]`,
`opc_ua[READ;opc.tcp://h:4840#;/Objects/1:x]`. Parameters may hold `.`, `:`, `;`,
`,` and nested brackets, so a layer's parameters run to the *matching* `]`, as in
FORTE's `CBaseCommFB::extractLayerIdAndParams`. An ID with no brackets at all is
FORTE's shorthand for `fbdk[].ip[<ID>]`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from testbed.errors import TestbedError

__all__ = [
    "DEFAULT_STACK",
    "CommId",
    "CommIdError",
    "CommLayer",
    "IpEndpoint",
    "ip_endpoint",
    "parse_comm_id",
    "parse_ip_params",
]

DEFAULT_STACK: tuple[str, ...] = ("fbdk", "ip")
"""Layers a bare ID (no brackets) stands for; it becomes the last layer's params."""

_LAYER_NAME = re.compile(r"[A-Za-z0-9_]+")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")
_PORT = re.compile(r"[0-9]{1,5}")


class CommIdError(TestbedError, ValueError):
    """A communication ID (or one layer's parameters) that cannot be read; names the bad part."""


def _check_balanced(params: str, layer: str) -> None:
    depth = 0
    for i, ch in enumerate(params):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise CommIdError(f"layer {layer!r}: unmatched ']' at position {i} of its params")
    if depth:
        raise CommIdError(f"layer {layer!r}: unclosed '[' in its params {params!r}")


@dataclass(frozen=True, slots=True)
class CommLayer:
    """One layer of a comm stack: its registered name (`ip`, `mqtt`) and raw parameter text."""

    name: str
    params: str = ""

    def __post_init__(self) -> None:
        if not _LAYER_NAME.fullmatch(self.name):
            raise CommIdError(f"bad layer name {self.name!r}: use letters, digits and '_'")
        _check_balanced(self.params, self.name)

    def __str__(self) -> str:
        return f"{self.name}[{self.params}]"


@dataclass(frozen=True, slots=True)
class CommId:
    """A parsed ID: the layer stack from the outermost (data encoding) to the transport."""

    layers: tuple[CommLayer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise CommIdError("a communication ID needs at least one layer")

    @property
    def top(self) -> CommLayer:
        """The outermost layer (the one the FB's data enters first)."""
        return self.layers[0]

    @property
    def bottom(self) -> CommLayer:
        """The innermost layer (the transport)."""
        return self.layers[-1]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> CommLayer | None:
        """The first layer called `name`, if any."""
        return next((layer for layer in self.layers if layer.name == name), None)

    def __str__(self) -> str:
        return ".".join(str(layer) for layer in self.layers)


def parse_comm_id(text: str, default_stack: tuple[str, ...] = DEFAULT_STACK) -> CommId:
    """Read an ID string; raises CommIdError naming the position and the bad part.

    Surrounding whitespace is ignored. Text without any bracket is the shorthand for
    `default_stack` (FORTE: `fbdk[].ip[...]`) with the text as the last layer's params.
    """
    source = text.strip()
    if not source:
        raise CommIdError("empty communication ID")
    if "[" not in source and "]" not in source:
        if not default_stack:
            raise CommIdError(f"ID {source!r} has no layers and no default stack applies")
        *outer, last = default_stack
        return CommId((*(CommLayer(n) for n in outer), CommLayer(last, source)))
    layers: list[CommLayer] = []
    pos = 0
    while True:
        open_at = source.find("[", pos)
        if open_at < 0:
            raise CommIdError(
                f"layer {source[pos:]!r} at position {pos} of {source!r} has no [params]")
        name = source[pos:open_at]
        if not _LAYER_NAME.fullmatch(name):
            raise CommIdError(
                f"bad layer name {name!r} at position {pos} of {source!r}: "
                "use letters, digits and '_'")
        close_at = _matching_bracket(source, open_at, name)
        layers.append(CommLayer(name, source[open_at + 1:close_at]))
        pos = close_at + 1
        if pos == len(source):
            return CommId(tuple(layers))
        if source[pos] != ".":
            raise CommIdError(
                f"expected '.' or the end after layer {name!r} at position {pos} of {source!r}, "
                f"got {source[pos]!r}")
        pos += 1
        if pos == len(source):
            raise CommIdError(f"{source!r} ends with '.' but no layer follows")


def _matching_bracket(source: str, open_at: int, name: str) -> int:
    depth = 0
    for i in range(open_at, len(source)):
        ch = source[i]
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
    raise CommIdError(f"'[' of layer {name!r} at position {open_at} of {source!r} is never closed")


# ----------------------------------------------------------------------------- ip layer


@dataclass(frozen=True, slots=True)
class IpEndpoint:
    """An `ip[...]` layer's target: host (name, IPv4, or IPv6 without brackets), port and,
    after `@`, the local interface for multicast (FORTE's `ip[239.0.0.1:61000@192.168.0.2]`)."""

    host: str
    port: int
    interface: str | None = None

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def is_multicast(self) -> bool:
        """True for an IPv4/IPv6 multicast group (hostnames are never treated as groups)."""
        try:
            return ipaddress.ip_address(self.host.split("%", 1)[0]).is_multicast
        except ValueError:
            return False

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        tail = f"@{self.interface}" if self.interface is not None else ""
        return f"{host}:{self.port}{tail}"


def parse_ip_params(params: str) -> IpEndpoint:
    """Split `host:port[@interface]` (IPv6 as `[addr]:port`); CommIdError names the bad part."""
    text = params.strip()
    interface: str | None = None
    if "@" in text:
        text, interface = text.split("@", 1)
        if not interface or any(c.isspace() for c in interface):
            raise CommIdError(f"ip[{params}]: bad interface {interface!r} after '@'")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise CommIdError(f"ip[{params}]: IPv6 address opened with '[' is never closed")
        host = text[1:close]
        rest = text[close + 1:]
        if not rest.startswith(":"):
            raise CommIdError(f"ip[{params}]: expected ':port' after the IPv6 address")
        port_text = rest[1:]
        _check_ipv6(host, params)
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise CommIdError(f"ip[{params}]: expected host:port, found no ':'")
        if ":" in host:
            raise CommIdError(
                f"ip[{params}]: host {host!r} has ':'; write IPv6 addresses as [addr]:port")
        _check_host(host, params)
    return IpEndpoint(host, _port(port_text, params), interface)


def _check_ipv6(host: str, params: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise CommIdError(f"ip[{params}]: bad IPv6 address {host!r}: {exc}") from exc


def _check_host(host: str, params: str) -> None:
    if not host:
        raise CommIdError(f"ip[{params}]: the host before ':' is empty")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise CommIdError(f"ip[{params}]: bad IPv4 address {host!r}: {exc}") from exc
        return
    if not _HOSTNAME.fullmatch(host):
        raise CommIdError(f"ip[{params}]: bad host name {host!r}")


def _port(text: str, params: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 0xFFFF:
        raise CommIdError(f"ip[{params}]: bad port {text!r} (want 0..65535)")
    return int(text)


def ip_endpoint(comm_id: CommId) -> IpEndpoint:
    """The endpoint of the ID's `ip` layer; CommIdError if the stack has none."""
    layer = comm_id.layer("ip")
    if layer is None:
        raise CommIdError(f"ID {comm_id} has no ip layer (layers: {', '.join(comm_id.names)})")
    return parse_ip_params(layer.params)
