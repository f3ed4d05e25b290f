"""FORTE's ``opc_ua[...]`` communication-layer ID strings, parsed into a frozen value.

Grammar (as FORTE's ``CActionInfo::getActionInfoFromParams`` reads it)::

    opc_ua[ACTION;[ENDPOINT#;]PAIR{;PAIR}]
    PAIR   = [BROWSEPATH][,NODEID]
    NODEID = <namespace>:<i|s|g|b>=<identifier>      e.g. 1:i=13, 2:s=Pump.Speed

Examples: ``opc_ua[READ;opc.tcp://10.0.0.5:4840#;/Objects/1:Plant/1:Level]``,
``opc_ua[SUBSCRIBE;opc.tcp://127.0.0.1:4841#;,2:s=Nivel]``.
An ID without an endpoint addresses FORTE's local server. Unprefixed browse-path
elements use namespace 1 (FORTE's default browse-name namespace) except the Root
children (``Objects``...). When a pair gives both a browse path and a NodeId, the
NodeId is the address used (FORTE uses the path only to create nodes).
As a leniency seen in real projects, a pair that is just ``2:s=Foo`` (no comma) is
read as a NodeId.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from drivers.errors import DriverConfigError
from drivers.opcua.addressing import (
    BrowsePath,
    NodeAddress,
    NodeIdAddress,
    parse_browse_path,
    parse_node_id,
)

__all__ = [
    "FORTE_DEFAULT_BROWSE_NAMESPACE",
    "ForteNodePair",
    "ForteOpcUaAction",
    "ForteOpcUaId",
    "parse_forte_opcua_id",
]

FORTE_DEFAULT_BROWSE_NAMESPACE = 1
_FORTE_NODE_ID = re.compile(r"^(\d+):([isgb])=(.*)$", re.DOTALL)
_ENDPOINT_SCHEMES = ("opc.tcp://", "opc.wss://", "opc.https://")


class ForteOpcUaAction(Enum):
    """The actions FORTE's opc_ua layer knows (client ones and local-server ones)."""

    READ = "READ"
    WRITE = "WRITE"
    SUBSCRIBE = "SUBSCRIBE"
    CALL_METHOD = "CALL_METHOD"
    CREATE_METHOD = "CREATE_METHOD"
    CREATE_OBJECT = "CREATE_OBJECT"
    CREATE_VARIABLE = "CREATE_VARIABLE"
    DELETE_OBJECT = "DELETE_OBJECT"
    DELETE_VARIABLE = "DELETE_VARIABLE"


@dataclass(frozen=True, slots=True)
class ForteNodePair:
    """One ``BROWSEPATH,NODEID`` pair; at least one side is present."""

    browse_path: BrowsePath | None
    node_id: NodeIdAddress | None

    @property
    def address(self) -> NodeAddress:
        """The address to use: the NodeId when given, else the browse path."""
        if self.node_id is not None:
            return self.node_id
        assert self.browse_path is not None
        return self.browse_path


@dataclass(frozen=True, slots=True)
class ForteOpcUaId:
    """A parsed ``opc_ua[...]`` ID: action, optional remote endpoint, node pairs."""

    action: ForteOpcUaAction
    endpoint: str | None
    pairs: tuple[ForteNodePair, ...]

    @property
    def is_remote(self) -> bool:
        """True when the ID names a remote server (FORTE's client side)."""
        return self.endpoint is not None

    @property
    def addresses(self) -> tuple[NodeAddress, ...]:
        """The node addresses in pair order, ready for the client session."""
        return tuple(pair.address for pair in self.pairs)


def _parse_forte_node_id(text: str, whole: str) -> NodeIdAddress:
    match = _FORTE_NODE_ID.match(text.strip())
    if match is None:
        raise DriverConfigError(
            f"opc_ua ID {whole!r}: NodeId {text!r} must look like <ns>:<i|s|g|b>=<identifier>, "
            "e.g. 2:s=Pump.Speed"
        )
    namespace, letter, ident = match.groups()
    try:
        return parse_node_id(f"ns={namespace};{letter}={ident}")
    except DriverConfigError as exc:
        raise DriverConfigError(f"opc_ua ID {whole!r}: {exc}") from exc


def _parse_pair(text: str, whole: str, position: int) -> ForteNodePair:
    if not text.strip():
        raise DriverConfigError(f"opc_ua ID {whole!r}: node pair {position} is empty")
    path_text, comma, node_text = text.partition(",")
    path_text = path_text.strip()
    if not comma and _FORTE_NODE_ID.match(path_text):
        return ForteNodePair(None, _parse_forte_node_id(path_text, whole))
    browse_path: BrowsePath | None = None
    if path_text:
        try:
            browse_path = parse_browse_path(
                path_text, default_namespace=FORTE_DEFAULT_BROWSE_NAMESPACE
            )
        except DriverConfigError as exc:
            raise DriverConfigError(f"opc_ua ID {whole!r}: node pair {position}: {exc}") from exc
    node_id = _parse_forte_node_id(node_text, whole) if node_text.strip() else None
    if browse_path is None and node_id is None:
        raise DriverConfigError(
            f"opc_ua ID {whole!r}: node pair {position} has neither path nor NodeId"
        )
    return ForteNodePair(browse_path, node_id)


def parse_forte_opcua_id(text: str) -> ForteOpcUaId:
    """Parse ``opc_ua[ACTION;endpoint#;pairs]`` (or the bracket content alone)."""
    whole = text.strip()
    body = whole
    if body.startswith("opc_ua["):
        if not body.endswith("]"):
            raise DriverConfigError(f"opc_ua ID {whole!r}: missing closing ']'")
        body = body[len("opc_ua[") : -1]
    elif "[" in body.split(";", 1)[0]:
        layer = body.split("[", 1)[0]
        raise DriverConfigError(f"opc_ua ID {whole!r}: layer {layer!r} is not opc_ua")
    action_text, sep, rest = body.partition(";")
    action_name = action_text.strip().upper()
    try:
        action = ForteOpcUaAction(action_name)
    except ValueError as exc:
        known = ", ".join(a.value for a in ForteOpcUaAction)
        raise DriverConfigError(
            f"opc_ua ID {whole!r}: unknown action {action_text.strip()!r} (known: {known})"
        ) from exc
    if not sep or not rest.strip():
        raise DriverConfigError(f"opc_ua ID {whole!r}: expected ';' and at least one node pair")
    endpoint: str | None = None
    stripped = rest.lstrip()
    if stripped.startswith(_ENDPOINT_SCHEMES):
        endpoint_text, hash_sep, after = stripped.partition("#")
        if not hash_sep:
            raise DriverConfigError(
                f"opc_ua ID {whole!r}: endpoint must end with '#', e.g. opc.tcp://host:4840#"
            )
        if not after.startswith(";"):
            raise DriverConfigError(f"opc_ua ID {whole!r}: expected ';' after the endpoint's '#'")
        endpoint = endpoint_text.strip()
        if endpoint.partition("://")[2] == "":
            raise DriverConfigError(f"opc_ua ID {whole!r}: endpoint {endpoint!r} has no host")
        rest = after[1:]
    pair_texts = rest.split(";")
    if pair_texts and not pair_texts[-1].strip():
        pair_texts = pair_texts[:-1]  # a trailing ';' is harmless
    if not pair_texts:
        raise DriverConfigError(f"opc_ua ID {whole!r}: no node pair after the endpoint")
    pairs = tuple(_parse_pair(p, whole, i) for i, p in enumerate(pair_texts, start=1))
    return ForteOpcUaId(action, endpoint, pairs)
