"""The Sparkplug B topic namespace and the host application STATE message.

`spBv1.0/{group}/{NBIRTH|NDEATH|DBIRTH|DDEATH|NDATA|DDATA|NCMD|DCMD}/{edge_node}[/{device}]`
and `spBv1.0/STATE/{host_id}` with the 3.0 JSON payload `{"online": bool, "timestamp": ms}`
(the 2.2 plain `ONLINE`/`OFFLINE` strings are accepted when reading).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError

from drivers.errors import DriverConfigError
from drivers.mqtt.sparkplug._errors import SparkplugDecodeError

NAMESPACE: Final = "spBv1.0"
STATE_WORD: Final = "STATE"
_FORBIDDEN_IN_IDS: Final = frozenset("/+#")


class MessageType(enum.StrEnum):
    """The Sparkplug verbs of the topic namespace (plus STATE)."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    NDATA = "NDATA"
    DDATA = "DDATA"
    NCMD = "NCMD"
    DCMD = "DCMD"
    STATE = "STATE"

    @property
    def is_device_message(self) -> bool:
        """True for the D* verbs, whose topic ends in a device id."""
        return self in _DEVICE_TYPES


_DEVICE_TYPES: Final = frozenset(
    {MessageType.DBIRTH, MessageType.DDEATH, MessageType.DDATA, MessageType.DCMD}
)


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    """A parsed Sparkplug topic. For STATE, `host_id` is set and the other ids are empty."""

    message_type: MessageType
    group_id: str = ""
    edge_node_id: str = ""
    device_id: str | None = None
    host_id: str | None = None

    def __str__(self) -> str:
        if self.message_type is MessageType.STATE:
            return state_topic(self.host_id or "")
        return message_topic(self.group_id, self.message_type, self.edge_node_id, self.device_id)


def check_id(kind: str, value: str) -> str:
    """Validate a group/edge node/device/host id: non-empty, no `/`, `+` or `#`."""
    if not value or _FORBIDDEN_IN_IDS.intersection(value):
        raise DriverConfigError(f"{kind} {value!r} must be non-empty and contain no '/', '+', '#'")
    return value


def message_topic(
    group_id: str, message_type: MessageType, edge_node_id: str, device_id: str | None = None
) -> str:
    """The topic of a node or device message; device verbs need `device_id`, node verbs not."""
    if message_type is MessageType.STATE:
        raise DriverConfigError("STATE topics are built with state_topic(host_id)")
    check_id("group id", group_id)
    check_id("edge node id", edge_node_id)
    if message_type.is_device_message:
        if device_id is None:
            raise DriverConfigError(f"{message_type} topics need a device id")
        check_id("device id", device_id)
        return f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}/{device_id}"
    if device_id is not None:
        raise DriverConfigError(f"{message_type} topics take no device id")
    return f"{NAMESPACE}/{group_id}/{message_type}/{edge_node_id}"


def state_topic(host_id: str) -> str:
    """`spBv1.0/STATE/{host_id}` (Sparkplug 3.0 host application state)."""
    return f"{NAMESPACE}/{STATE_WORD}/{check_id('host id', host_id)}"


def parse_topic(topic: str) -> SparkplugTopic:
    """Parse a Sparkplug topic; SparkplugDecodeError naming the topic if it is not one."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != NAMESPACE:
        raise SparkplugDecodeError(f"topic {topic!r} is not in the {NAMESPACE} namespace")
    if parts[1] == STATE_WORD and len(parts) == 3:
        if not parts[2]:
            raise SparkplugDecodeError(f"STATE topic {topic!r} has an empty host id")
        return SparkplugTopic(MessageType.STATE, host_id=parts[2])
    if len(parts) not in (4, 5):
        raise SparkplugDecodeError(f"topic {topic!r} has {len(parts)} levels, expected 4 or 5")
    try:
        message_type = MessageType(parts[2])
    except ValueError as exc:
        raise SparkplugDecodeError(f"topic {topic!r}: unknown message type {parts[2]!r}") from exc
    if message_type is MessageType.STATE or not all(parts):
        raise SparkplugDecodeError(f"topic {topic!r} is malformed")
    if message_type.is_device_message != (len(parts) == 5):
        raise SparkplugDecodeError(
            f"topic {topic!r}: {message_type} "
            + ("needs a device id" if message_type.is_device_message else "takes no device id")
        )
    return SparkplugTopic(
        message_type=message_type,
        group_id=parts[1],
        edge_node_id=parts[3],
        device_id=parts[4] if len(parts) == 5 else None,
    )


class _StateJson(BaseModel):
    """Wire schema of the Sparkplug 3.0 STATE payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    online: StrictBool
    timestamp: StrictInt


@dataclass(frozen=True, slots=True)
class HostState:
    """A host application's state. `timestamp_ms` is None for the 2.2 plain-string form."""

    online: bool
    timestamp_ms: int | None


def encode_host_state(online: bool, timestamp_ms: int) -> bytes:
    """The Sparkplug 3.0 STATE payload (publish it retained at QoS 1)."""
    return _StateJson(online=online, timestamp=timestamp_ms).model_dump_json().encode()


def decode_host_state(payload: bytes) -> HostState:
    """Parse a STATE payload: 3.0 JSON, or the 2.2 `ONLINE`/`OFFLINE` strings."""
    text = payload.strip()
    if text in (b"ONLINE", b"OFFLINE"):
        return HostState(online=text == b"ONLINE", timestamp_ms=None)
    try:
        parsed = _StateJson.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise SparkplugDecodeError(f"STATE payload {payload[:80]!r} is not valid: {exc}") from exc
    return HostState(online=parsed.online, timestamp_ms=parsed.timestamp)
