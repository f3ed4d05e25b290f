"""Host-side (cloud) decoding: any spBv1.0 message into typed objects, with per-edge-node
tracking of bdSeq, seq gaps and duplicates, alias resolution and message-id dedupe.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Final

import structlog

from drivers.errors import DriverError
from drivers.mqtt.sparkplug._codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    SEQ_MODULO,
    decode_payload,
    encode_payload,
)
from drivers.mqtt.sparkplug._edge import BD_SEQ_METRIC, REBIRTH_METRIC
from drivers.mqtt.sparkplug._errors import SparkplugDecodeError, UnknownAliasError
from drivers.mqtt.sparkplug._topics import (
    HostState,
    MessageType,
    SparkplugTopic,
    decode_host_state,
    message_topic,
    parse_topic,
)
from drivers.mqtt.sparkplug._transport import OutgoingMessage
from drivers.mqtt.sparkplug._types import DataType, Metric, Payload

_log = structlog.get_logger(__name__)

_SEQUENCED: Final = frozenset(
    {MessageType.NDATA, MessageType.DBIRTH, MessageType.DDATA, MessageType.DDEATH}
)


class SeqStatus(enum.Enum):
    """How a message's `seq` relates to what the host expected from that edge node."""

    NOT_SEQUENCED = "not_sequenced"  # STATE, NDEATH, NCMD, DCMD
    IN_ORDER = "in_order"  # including NBIRTH, which restarts the sequence
    DUPLICATE = "duplicate"  # the same seq as the previous message again
    GAP = "gap"  # messages were lost (see `missing`); ask for a rebirth
    UNKNOWN_NODE = "unknown_node"  # no NBIRTH seen in this session; ask for a rebirth


@dataclass(frozen=True, slots=True)
class HostMessage:
    """One decoded Sparkplug message as the host sees it.

    Metrics in `payload` carry names even when the wire sent aliases only. `missing` counts
    the seq values skipped on a GAP. `duplicate_message_id` is True when the payload's store
    message id (uuid) was seen before from this edge node. `stale_death` marks an NDEATH
    whose bdSeq is not the current session's (an old will delivered late).
    """

    topic: SparkplugTopic
    payload: Payload | None = None
    host_state: HostState | None = None
    seq_status: SeqStatus = SeqStatus.NOT_SEQUENCED
    missing: int = 0
    duplicate_message_id: bool = False
    stale_death: bool = False

    @property
    def rebirth_needed(self) -> bool:
        """True when the host should send `Node Control/Rebirth` to this edge node."""
        return self.seq_status in (SeqStatus.GAP, SeqStatus.UNKNOWN_NODE)

    def values(self) -> dict[str, object]:
        """Metric name -> value, for quick checks (later metrics win)."""
        if self.payload is None:
            return {}
        return {m.name or f"alias {m.alias}": m.value for m in self.payload.metrics}


@dataclass(frozen=True, slots=True)
class HostDecoderStatistics:
    """Counters of a `HostDecoder`."""

    messages: int
    gaps: int
    missing_messages: int
    seq_duplicates: int
    message_id_duplicates: int
    stale_deaths: int
    errors: tuple[tuple[str, int], ...]


@dataclass(slots=True)
class _NodeTrack:
    bd_seq: int | None = None
    online: bool = False
    expected_seq: int | None = None
    aliases: dict[int, tuple[str | None, str, DataType]] = field(default_factory=dict)
    names: dict[tuple[str | None, str], DataType] = field(default_factory=dict)
    seen_ids: OrderedDict[int, None] = field(default_factory=OrderedDict)


class HostDecoder:
    """Decodes spBv1.0 messages for a host application and tracks each edge node."""

    def __init__(
        self, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, dedupe_window: int = 65536
    ) -> None:
        self._max_bytes = max_payload_bytes
        self._dedupe_window = dedupe_window
        self._nodes: dict[tuple[str, str], _NodeTrack] = {}
        self._counts: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()

    def is_online(self, group_id: str, edge_node_id: str) -> bool:
        """True between an edge node's NBIRTH and its (current-session) NDEATH."""
        track = self._nodes.get((group_id, edge_node_id))
        return track is not None and track.online

    def decode(self, topic: str, data: bytes) -> HostMessage:
        """Decode one message. Typed errors (ProtocolError children) are counted, then raised."""
        try:
            message = self._decode(parse_topic(topic), data)
        except DriverError as exc:
            self._errors[str(getattr(exc, "reason", type(exc).__name__))] += 1
            raise
        self._counts["messages"] += 1
        return message

    def statistics(self) -> HostDecoderStatistics:
        """A snapshot of the counters."""
        c = self._counts
        return HostDecoderStatistics(
            messages=c["messages"],
            gaps=c["gaps"],
            missing_messages=c["missing"],
            seq_duplicates=c["seq_duplicates"],
            message_id_duplicates=c["id_duplicates"],
            stale_deaths=c["stale_deaths"],
            errors=tuple(sorted(self._errors.items())),
        )

    # ------------------------------------------------------------------ internals

    def _decode(self, topic: SparkplugTopic, data: bytes) -> HostMessage:
        verb = topic.message_type
        if verb is MessageType.STATE:
            return HostMessage(topic=topic, host_state=decode_host_state(data))
        key = (topic.group_id, topic.edge_node_id)
        track = self._nodes.setdefault(key, _NodeTrack())
        device = topic.device_id

        def datatype_of(name: str | None, alias: int | None) -> DataType | None:
            if name is not None:
                return track.names.get((device, name))
            entry = track.aliases.get(alias) if alias is not None else None
            return entry[2] if entry is not None and entry[0] == device else None

        payload = decode_payload(data, max_bytes=self._max_bytes, datatype_of=datatype_of)
        if verb is MessageType.NBIRTH:
            return self._on_node_birth(topic, track, payload)
        if verb is MessageType.NDEATH:
            return self._on_node_death(topic, track, payload)
        if verb is MessageType.DBIRTH:
            self._register(track, device, payload, clear_device=True)
        payload = self._resolve_names(track, device, payload)
        status, missing = SeqStatus.NOT_SEQUENCED, 0
        if verb in _SEQUENCED:
            status, missing = self._check_seq(topic, track, payload)
        return HostMessage(
            topic=topic,
            payload=payload,
            seq_status=status,
            missing=missing,
            duplicate_message_id=self._seen_before(track, payload),
        )

    def _on_node_birth(
        self, topic: SparkplugTopic, track: _NodeTrack, payload: Payload
    ) -> HostMessage:
        bd_seq = _bd_seq_of(payload, "NBIRTH")
        if payload.seq is None:
            raise SparkplugDecodeError(f"NBIRTH on {topic} carries no seq")
        track.bd_seq = bd_seq
        track.online = True
        track.aliases.clear()
        track.names.clear()
        track.expected_seq = (payload.seq + 1) % SEQ_MODULO
        self._register(track, None, payload, clear_device=False)
        status = SeqStatus.IN_ORDER if payload.seq == 0 else SeqStatus.GAP
        _log.info("edge_node_birth_seen", topic=str(topic), bd_seq=bd_seq)
        return HostMessage(topic=topic, payload=payload, seq_status=status)

    def _on_node_death(
        self, topic: SparkplugTopic, track: _NodeTrack, payload: Payload
    ) -> HostMessage:
        bd_seq = _bd_seq_of(payload, "NDEATH")
        stale = track.bd_seq is not None and bd_seq != track.bd_seq
        if stale:
            self._counts["stale_deaths"] += 1
        else:
            track.online = False
            track.expected_seq = None
        return HostMessage(topic=topic, payload=payload, stale_death=stale)

    def _register(
        self, track: _NodeTrack, device: str | None, payload: Payload, *, clear_device: bool
    ) -> None:
        if clear_device:
            for alias in [a for a, e in track.aliases.items() if e[0] == device]:
                del track.aliases[alias]
        for metric in payload.metrics:
            if metric.name is None:
                raise SparkplugDecodeError(f"BIRTH metric {metric.label()!r} has no name")
            track.names[(device, metric.name)] = metric.datatype
            if metric.alias is not None:
                track.aliases[metric.alias] = (device, metric.name, metric.datatype)

    def _resolve_names(self, track: _NodeTrack, device: str | None, payload: Payload) -> Payload:
        resolved: list[Metric] = []
        for metric in payload.metrics:
            if metric.name is not None:
                resolved.append(metric)
                continue
            entry = track.aliases.get(metric.alias) if metric.alias is not None else None
            if entry is None or entry[0] != device:
                raise UnknownAliasError(
                    f"metric alias {metric.alias} was not declared in a BIRTH"
                    + ("" if device is None else f" of device {device!r}")
                )
            resolved.append(replace(metric, name=entry[1]))
        return replace(payload, metrics=tuple(resolved))

    def _check_seq(
        self, topic: SparkplugTopic, track: _NodeTrack, payload: Payload
    ) -> tuple[SeqStatus, int]:
        if payload.seq is None:
            raise SparkplugDecodeError(f"{topic.message_type} on {topic} carries no seq")
        if track.expected_seq is None:
            return SeqStatus.UNKNOWN_NODE, 0
        if payload.seq == track.expected_seq:
            track.expected_seq = (payload.seq + 1) % SEQ_MODULO
            return SeqStatus.IN_ORDER, 0
        if payload.seq == (track.expected_seq - 1) % SEQ_MODULO:
            self._counts["seq_duplicates"] += 1
            return SeqStatus.DUPLICATE, 0
        missing = (payload.seq - track.expected_seq) % SEQ_MODULO
        track.expected_seq = (payload.seq + 1) % SEQ_MODULO
        self._counts["gaps"] += 1
        self._counts["missing"] += missing
        _log.warning("sequence_gap_detected", topic=str(topic), missing=missing)
        return SeqStatus.GAP, missing

    def _seen_before(self, track: _NodeTrack, payload: Payload) -> bool:
        message_id = payload.message_id
        if message_id is None:
            return False
        if message_id in track.seen_ids:
            track.seen_ids.move_to_end(message_id)
            self._counts["id_duplicates"] += 1
            return True
        track.seen_ids[message_id] = None
        if len(track.seen_ids) > self._dedupe_window:
            track.seen_ids.popitem(last=False)
        return False


def _bd_seq_of(payload: Payload, what: str) -> int:
    for metric in payload.metrics:
        if metric.name == BD_SEQ_METRIC and isinstance(metric.value, int):
            if not 0 <= metric.value < SEQ_MODULO:
                raise SparkplugDecodeError(f"{what} bdSeq {metric.value} is outside 0..255")
            return metric.value
    raise SparkplugDecodeError(f"{what} carries no integer bdSeq metric")


def rebirth_request(group_id: str, edge_node_id: str, timestamp_ms: int) -> OutgoingMessage:
    """The NCMD a host sends to ask an edge node for a rebirth (QoS 0, not retained)."""
    payload = Payload(
        timestamp_ms=timestamp_ms,
        metrics=(Metric(REBIRTH_METRIC, DataType.BOOLEAN, True, timestamp_ms=timestamp_ms),),
    )
    topic = message_topic(group_id, MessageType.NCMD, edge_node_id)
    return OutgoingMessage(topic, encode_payload(payload), qos=0, retain=False)


def command_message(
    group_id: str,
    edge_node_id: str,
    metrics: tuple[Metric, ...],
    timestamp_ms: int,
    device_id: str | None = None,
) -> OutgoingMessage:
    """An NCMD (or DCMD when `device_id` is given) writing `metrics` (QoS 0)."""
    verb = MessageType.NCMD if device_id is None else MessageType.DCMD
    payload = Payload(timestamp_ms=timestamp_ms, metrics=metrics)
    topic = message_topic(group_id, verb, edge_node_id, device_id)
    return OutgoingMessage(topic, encode_payload(payload), qos=0, retain=False)
