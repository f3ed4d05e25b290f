"""The Sparkplug B edge node role, transport-agnostic.

Life of a session, driven by whoever owns the MQTT connection:

1. `begin_session()` advances `bdSeq` and hands the NDEATH will to the transport
   (`set_will`) before it connects.
2. `await on_connected()` subscribes to NCMD/DCMD (and the primary host's STATE) and, without
   a primary host, publishes NBIRTH and every DBIRTH. With a primary host the births wait
   until its STATE says online.
3. Application values go through `collect()` (report by exception, deadbands, batching; the
   result is what the store persists) and `await publish_data()` (seq, aliases, message id).
   `publish_data` answers `PublishOutcome.HELD` while the node must not send (primary host
   offline, disconnected, device dead): the caller keeps the message stored and replays it
   later with `historical=True`.
4. Incoming messages go to `await handle_message()`: rebirth requests, STATE changes and
   writes; writes reach the application through a bounded queue (`receive_command`).
5. `on_connection_lost()` when the socket dies (the broker sends the will); `aclose()` sends
   NDEATH itself on a clean shutdown.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, Self

import structlog
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.mqtt.sparkplug._codec import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    SEQ_MODULO,
    decode_payload,
    encode_payload,
)
from drivers.mqtt.sparkplug._errors import (
    DatatypeMismatchError,
    MetricValueError,
    PayloadTooLargeError,
    UnknownAliasError,
)
from drivers.mqtt.sparkplug._metrics import MetricSpec
from drivers.mqtt.sparkplug._topics import (
    NAMESPACE,
    MessageType,
    check_id,
    decode_host_state,
    message_topic,
    parse_topic,
    state_topic,
)
from drivers.mqtt.sparkplug._transport import OutgoingMessage, SparkplugTransport
from drivers.mqtt.sparkplug._types import (
    DataType,
    Metric,
    MetricValue,
    Payload,
    message_id_uuid,
)
from drivers.mqtt.sparkplug._wire import (
    NULL_VALUE,
    ValueEncoder,
    VarintFieldCache,
    data_payload,
    field_string,
    field_varint,
    frame_metric,
    stored_payload,
    value_encoder,
)

_log = structlog.get_logger(__name__)

BD_SEQ_METRIC: Final = "bdSeq"
REBIRTH_METRIC: Final = "Node Control/Rebirth"
_RESERVED_NAMES: Final = frozenset({BD_SEQ_METRIC, REBIRTH_METRIC})
_UINT64_MAX: Final = (1 << 64) - 1


class EdgeNodeConfig(BaseModel):
    """Identity and limits of one Sparkplug edge node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_id: str = Field(min_length=1, pattern=r"^[^/+#]+$")
    edge_node_id: str = Field(min_length=1, pattern=r"^[^/+#]+$")
    primary_host_id: str | None = Field(default=None, min_length=1, pattern=r"^[^/+#]+$")
    """With a primary host, births and data wait until its STATE says online."""
    data_qos: Literal[0, 1] = 0
    """Sparkplug 3.0 asks for QoS 0 on BIRTH/DATA; store-and-forward may choose 1."""
    use_aliases: bool = True
    """DATA metrics carry the alias only (the datatype stays, for simple consumers)."""
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    command_queue_size: int = Field(default=256, gt=0)
    network_timeout_s: float = Field(default=10.0, gt=0)
    """Deadline of each publish/subscribe call on the transport."""


class EdgeNodeState(enum.Enum):
    """Where the edge node is in its session."""

    NEW = "new"
    CONNECTING = "connecting"  # will set, CONNECT not yet confirmed
    WAITING_FOR_HOST = "waiting_for_host"  # connected, primary host not (yet) online
    ONLINE = "online"  # births published; data flows
    HOLDING = "holding"  # primary host went offline: data is held by the caller
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


class PublishOutcome(enum.Enum):
    """What `publish_data` did with a message."""

    SENT = "sent"
    HELD = "held"  # not sent: keep it stored and replay it later as historical


@dataclass(frozen=True, slots=True)
class MetricChange:
    """One reported value of a data message."""

    name: str
    value: MetricValue
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class DataMessage:
    """The changes of one node or device batched into one NDATA/DDATA, before sending.

    This is what the store persists (`to_bytes`/`from_bytes`); seq, aliases, the message id
    and the historical flag are added when it is published. A message from `EdgeNode.collect`
    carries both forms already encoded (`stored`, and `wire`: the metrics as that node sends
    them live), so neither storing nor sending it encodes again.
    """

    device_id: str | None
    changes: tuple[MetricChange, ...]
    datatypes: tuple[DataType, ...] = field(repr=False)
    stored: bytes | None = field(default=None, repr=False, compare=False)
    """`to_bytes()` precomputed by the collecting node."""
    wire: bytes | None = field(default=None, repr=False, compare=False)
    """The encoded `metrics` entries of the live (not historical) DATA payload of `origin`."""
    origin: EdgeNode | None = field(default=None, repr=False, compare=False)
    """The node whose aliases `wire` uses."""

    def to_bytes(self) -> bytes:
        """A self-contained Sparkplug payload with names and datatypes (no seq, no alias)."""
        if self.stored is not None:
            return self.stored
        metrics = tuple(
            Metric(name=c.name, datatype=t, value=c.value, timestamp_ms=c.timestamp_ms)
            for c, t in zip(self.changes, self.datatypes, strict=True)
        )
        uuid = None if self.device_id is None else f"device:{self.device_id}"
        return encode_payload(Payload(timestamp_ms=None, metrics=metrics, uuid=uuid))

    @classmethod
    def from_bytes(cls, data: bytes) -> DataMessage:
        """Rebuild a message written by `to_bytes` (SparkplugDecodeError if it is not one)."""
        payload = decode_payload(data)
        device_id = None
        if payload.uuid is not None and payload.uuid.startswith("device:"):
            device_id = payload.uuid[len("device:") :]
        changes = tuple(
            MetricChange(name=m.name or "", value=m.value, timestamp_ms=m.timestamp_ms or 0)
            for m in payload.metrics
        )
        return cls(device_id, changes, tuple(m.datatype for m in payload.metrics))


@dataclass(frozen=True, slots=True)
class CommandWrite:
    """Writes received in an NCMD (device_id None) or DCMD, names resolved from aliases."""

    device_id: str | None
    metrics: tuple[Metric, ...]


@dataclass(frozen=True, slots=True)
class EdgeNodeStatistics:
    """Counters of one edge node (see `EdgeNode.statistics`)."""

    state: EdgeNodeState
    bd_seq: int | None
    next_seq: int
    births_published: int
    deaths_published: int
    data_published: int
    data_held: int
    values_suppressed: int
    rebirth_requests: int
    commands_received: int
    commands_dropped: int
    state_messages_ignored: int
    inbound_rejected: tuple[tuple[str, int], ...]


@dataclass(slots=True)
class _Device:
    specs: dict[str, MetricSpec]
    born: bool = False


@dataclass(frozen=True, slots=True)
class _Slot:
    """One declared metric with its DATA encoding prepared (fields that never change)."""

    spec: MetricSpec
    encode: ValueEncoder
    """Checks and encodes a non-null value (the report's validation too)."""
    datatype: bytes
    """The encoded datatype field."""
    named: bytes
    """Identity in the stored form: the name field."""
    sent: bytes
    """Identity on the wire: the alias field (and the name without `use_aliases`)."""


_Key = tuple[str | None, str]  # (device id or None for the node, metric name)


class EdgeNode:
    """A Sparkplug B 3.0 edge node over any `SparkplugTransport` (see module docstring)."""

    def __init__(
        self,
        config: EdgeNodeConfig,
        transport: SparkplugTransport,
        *,
        node_metrics: Sequence[MetricSpec] = (),
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._state = EdgeNodeState.NEW
        self._bd_seq: int | None = None
        self._seq = 0
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._host_timestamp_ms: int | None = None
        self._host_online = False
        self._commands: asyncio.Queue[CommandWrite] = asyncio.Queue(config.command_queue_size)
        self._node = _Device(specs={}, born=False)
        self._devices: dict[str, _Device] = {}
        self._aliases: dict[_Key, int] = {}
        self._by_alias: dict[int, _Key] = {}
        self._current: dict[_Key, tuple[MetricValue, int]] = {}
        self._reported: dict[_Key, MetricValue] = {}
        self._slots: dict[_Key, _Slot] = {}
        self._data_topics: dict[str | None, str] = {}
        self._metric_stamp = VarintFieldCache(3)
        self._payload_stamp = VarintFieldCache(1)
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        for spec in node_metrics:
            self._declare(None, self._node, spec)

    # ------------------------------------------------------------------ properties

    @property
    def config(self) -> EdgeNodeConfig:
        """The configuration this node was built with."""
        return self._config

    @property
    def state(self) -> EdgeNodeState:
        """The session state."""
        return self._state

    @property
    def bd_seq(self) -> int | None:
        """The birth/death sequence number of the current session (None before the first)."""
        return self._bd_seq

    @property
    def can_publish(self) -> bool:
        """True while data messages are sent rather than held."""
        return self._state is EdgeNodeState.ONLINE

    def alias_of(self, device_id: str | None, name: str) -> int:
        """The alias assigned to a metric (stable for the life of this object)."""
        return self._aliases[(device_id, name)]

    def subscriptions(self) -> tuple[str, ...]:
        """Topic filters this node needs (on_connected subscribes to them itself)."""
        cfg = self._config
        topics = [
            message_topic(cfg.group_id, MessageType.NCMD, cfg.edge_node_id),
            f"{NAMESPACE}/{cfg.group_id}/{MessageType.DCMD}/{cfg.edge_node_id}/+",
        ]
        if cfg.primary_host_id is not None:
            topics.append(state_topic(cfg.primary_host_id))
        return tuple(topics)

    # ------------------------------------------------------------------ declarations

    async def add_device(self, device_id: str, metrics: Sequence[MetricSpec]) -> None:
        """Declare a device; its DBIRTH goes out now if the node is online, else at birth."""
        check_id("device id", device_id)
        if device_id in self._devices:
            raise DriverConfigError(f"device {device_id!r} is already declared")
        device = _Device(specs={})
        for spec in metrics:
            self._declare(device_id, device, spec)
        self._devices[device_id] = device
        if self.can_publish:
            async with self._lock:
                await self._publish_device_birth(device_id, device)

    async def device_offline(self, device_id: str) -> None:
        """Publish DDEATH for a device; its data is held until `device_online`."""
        device = self._device(device_id)
        if not device.born:
            return
        device.born = False
        if self.can_publish:
            async with self._lock:
                payload = Payload(timestamp_ms=self._clock_ms(), seq=self._next_seq())
                topic = self._topic(MessageType.DDEATH, device_id)
                await self._send(topic, payload, qos=0, retain=False)
                self._counts["deaths"] += 1

    async def device_online(self, device_id: str) -> None:
        """Publish a fresh DBIRTH for a device after `device_offline`."""
        device = self._device(device_id)
        if self.can_publish and not device.born:
            async with self._lock:
                await self._publish_device_birth(device_id, device)

    def _declare(self, device_id: str | None, holder: _Device, spec: MetricSpec) -> None:
        if device_id is None and spec.name in _RESERVED_NAMES:
            raise DriverConfigError(f"metric name {spec.name!r} is reserved by Sparkplug")
        if spec.name in holder.specs:
            raise DriverConfigError(f"metric {spec.name!r} is declared twice")
        holder.specs[spec.name] = spec
        key = (device_id, spec.name)
        alias = len(self._aliases) + 1
        self._aliases[key] = alias
        self._by_alias[alias] = key
        name = field_string(1, spec.name.encode())
        alias_field = field_varint(2, alias)
        self._slots[key] = _Slot(
            spec=spec,
            encode=value_encoder(spec.datatype, f"metric {spec.name!r}"),
            datatype=field_varint(4, int(spec.datatype)),
            named=name,
            sent=alias_field if self._config.use_aliases else name + alias_field,
        )
        self._current[key] = (spec.initial, self._clock_ms())
        self._reported[key] = spec.initial

    def _device(self, device_id: str) -> _Device:
        try:
            return self._devices[device_id]
        except KeyError:
            known = sorted(self._devices)
            raise DriverConfigError(f"unknown device {device_id!r}; devices: {known}") from None

    # ------------------------------------------------------------------ session

    def begin_session(self) -> OutgoingMessage:
        """Start a new MQTT session: advance bdSeq and set the NDEATH will on the transport."""
        if self._state is EdgeNodeState.CLOSED:
            raise DriverConfigError("edge node is closed")
        self._bd_seq = 0 if self._bd_seq is None else (self._bd_seq + 1) % SEQ_MODULO
        self._state = EdgeNodeState.CONNECTING
        self._ready.clear()
        will = self._death_message()
        self._transport.set_will(will)
        return will

    async def on_connected(self) -> None:
        """The MQTT CONNECT succeeded: subscribe, then birth (or wait for the primary host)."""
        if self._state is not EdgeNodeState.CONNECTING:
            raise DriverConfigError(
                f"on_connected in state {self._state.value}; call begin_session first"
            )
        for topic in self.subscriptions():
            await self._call(self._transport.subscribe(topic, 1), f"subscribe {topic}")
        if self._config.primary_host_id is None or self._host_online:
            await self.rebirth()
        else:
            self._state = EdgeNodeState.WAITING_FOR_HOST
            _log.info("edge_node_waiting_for_host", host_id=self._config.primary_host_id)

    def on_connection_lost(self) -> None:
        """The MQTT session ended without NDEATH from us (the broker delivers the will)."""
        if self._state is not EdgeNodeState.CLOSED:
            self._state = EdgeNodeState.DISCONNECTED
            self._host_online = False  # the retained STATE comes again on the next subscribe
            self._ready.clear()
            for device in self._devices.values():
                device.born = False
            _log.info("edge_node_connection_lost", bd_seq=self._bd_seq)

    async def rebirth(self) -> None:
        """Publish NBIRTH (seq 0, current bdSeq) and every DBIRTH with current values."""
        if self._state not in (
            EdgeNodeState.CONNECTING,
            EdgeNodeState.WAITING_FOR_HOST,
            EdgeNodeState.ONLINE,
            EdgeNodeState.HOLDING,
        ):
            raise DriverConfigError(f"cannot publish births in state {self._state.value}")
        async with self._lock:
            self._seq = 0
            node_metrics = [
                Metric(BD_SEQ_METRIC, DataType.INT64, self._bd_seq or 0),
                Metric(REBIRTH_METRIC, DataType.BOOLEAN, False),
                *self._birth_metrics(None, self._node),
            ]
            payload = Payload(
                timestamp_ms=self._clock_ms(), metrics=tuple(node_metrics), seq=self._next_seq()
            )
            await self._send(self._topic(MessageType.NBIRTH), payload, qos=0, retain=False)
            self._counts["births"] += 1
            self._state = EdgeNodeState.ONLINE
            for device_id, device in self._devices.items():
                await self._publish_device_birth(device_id, device)
            self._ready.set()
        _log.info("edge_node_born", bd_seq=self._bd_seq, devices=len(self._devices))

    async def wait_ready(self) -> None:
        """Wait until data can be sent (births published, primary host online)."""
        await self._ready.wait()

    async def aclose(self) -> None:
        """Publish NDEATH if connected, then close. Idempotent; the transport stays open."""
        if self._state is EdgeNodeState.CLOSED:
            return
        connected = self._state in (
            EdgeNodeState.WAITING_FOR_HOST,
            EdgeNodeState.ONLINE,
            EdgeNodeState.HOLDING,
        )
        self._state = EdgeNodeState.CLOSED
        self._ready.clear()
        if connected:
            will = self._death_message()
            try:
                await self._call(
                    self._transport.publish(will.topic, will.payload, will.qos, will.retain),
                    "publish NDEATH",
                )
                self._counts["deaths"] += 1
            except (ConnectionLost, DriverTimeout) as exc:
                _log.warning("edge_node_death_not_sent", error=str(exc))

    async def __aenter__(self) -> Self:
        if self._state is not EdgeNodeState.NEW:
            raise DriverConfigError("an EdgeNode is used once")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ data

    def collect(
        self,
        device_id: str | None,
        values: Mapping[str, MetricValue],
        timestamp_ms: int | None = None,
    ) -> DataMessage | None:
        """Apply report by exception to new values; the changes worth sending, batched.

        Returns None when every value stayed inside its deadband. The returned message is
        what the store should persist before `publish_data` sends it.
        """
        holder = self._node if device_id is None else self._device(device_id)
        now = self._clock_ms() if timestamp_ms is None else timestamp_ms
        if isinstance(now, bool) or not 0 <= now <= _UINT64_MAX:
            raise MetricValueError(f"timestamp {now!r} is not an unsigned 64-bit integer")
        stamp = self._metric_stamp.field(now)
        changes: list[MetricChange] = []
        datatypes: list[DataType] = []
        stored: list[bytes] = []
        wire: list[bytes] = []
        slots = self._slots
        reported = self._reported
        current = self._current
        for name, value in values.items():
            key = (device_id, name)
            slot = slots.get(key)
            if slot is None:
                where = "the node" if device_id is None else f"device {device_id!r}"
                raise MetricValueError(
                    f"metric {name!r} is not declared on {where}; known: {sorted(holder.specs)}"
                )
            spec = slot.spec
            encoded = NULL_VALUE if value is None else slot.encode(value)
            current[key] = (value, now)
            if spec.should_report(reported[key], value):
                reported[key] = value
                changes.append(MetricChange(name, value, now))
                datatypes.append(spec.datatype)
                tail = stamp + slot.datatype + encoded
                stored.append(frame_metric(slot.named, tail))
                wire.append(frame_metric(slot.sent, tail))
            else:
                self._counts["suppressed"] += 1
        if not changes:
            return None
        tag = None if device_id is None else f"device:{device_id}".encode()
        return DataMessage(
            device_id,
            tuple(changes),
            tuple(datatypes),
            stored=stored_payload(b"".join(stored), tag),
            wire=b"".join(wire),
            origin=self,
        )

    async def publish_data(
        self, message: DataMessage, message_id: int, *, historical: bool = False
    ) -> PublishOutcome:
        """Send a collected message as NDATA/DDATA, or answer HELD when it must wait.

        `message_id` is the store's 64-bit id, carried in the payload `uuid` for end-to-end
        dedupe; replayed messages pass `historical=True` (is_historical on every metric).
        """
        (result,) = await self.publish_data_many([(message, message_id, historical)])
        if isinstance(result, DriverConfigError):
            raise result
        return result

    async def publish_data_many(
        self, items: Sequence[tuple[DataMessage, int, bool]]
    ) -> list[PublishOutcome | DriverConfigError]:
        """Send (message, message_id, historical) items in order, under one lock and one
        network deadline for the whole batch (the per-message path of a forwarder).

        Answers item by item: SENT; HELD for the first one that must wait (the rest are not
        tried, so order holds); or the DriverConfigError of a message naming an undeclared
        device or metric (not sent; later items still go). Other errors propagate, with the
        earlier items already handed to the transport.
        """
        results: list[PublishOutcome | DriverConfigError] = []
        qos = self._config.data_qos
        publish = self._transport.publish
        max_bytes = self._config.max_payload_bytes
        async with self._lock:
            try:
                async with asyncio.timeout(self._config.network_timeout_s):
                    for message, message_id, historical in items:
                        try:
                            if not self.can_publish or (
                                message.device_id is not None
                                and not self._device(message.device_id).born
                            ):
                                self._counts["held"] += 1
                                results.append(PublishOutcome.HELD)
                                break
                            live = message.wire if message.origin is self else None
                            if live and not historical:
                                topic, payload = self._data_topic(message.device_id), None
                            else:
                                topic, payload = self._data_payload(
                                    message, message_id, historical
                                )
                        except DriverConfigError as exc:
                            results.append(exc)
                            continue
                        if payload is None:
                            assert live is not None
                            data = self._live_data(live, message_id)
                        else:
                            data = encode_payload(payload, max_bytes=max_bytes)
                        await publish(topic, data, qos, False)
                        self._counts["data"] += 1
                        results.append(PublishOutcome.SENT)
            except TimeoutError as exc:
                if isinstance(exc, DriverTimeout):
                    raise
                raise DriverTimeout(
                    f"publishing {len(items)} data message(s) took longer than "
                    f"{self._config.network_timeout_s} s"
                ) from exc
        return results

    def _data_topic(self, device_id: str | None) -> str:
        topic = self._data_topics.get(device_id)
        if topic is None:
            verb = MessageType.NDATA if device_id is None else MessageType.DDATA
            topic = self._data_topics[device_id] = self._topic(verb, device_id)
        return topic

    def _live_data(self, metrics: bytes, message_id: int) -> bytes:
        """A live DATA payload around metrics this node encoded in `collect` (no re-encode)."""
        uuid = message_id_uuid(message_id).encode()
        now = self._clock_ms()
        if not 0 <= now <= _UINT64_MAX:
            raise MetricValueError(f"payload timestamp {now!r} is not an unsigned 64-bit integer")
        data = data_payload(self._payload_stamp.field(now), metrics, self._next_seq(), uuid)
        limit = self._config.max_payload_bytes
        if len(data) > limit:
            raise PayloadTooLargeError(
                f"encoded payload is {len(data)} bytes, over the limit of {limit} bytes"
            )
        return data

    def _data_payload(
        self, message: DataMessage, message_id: int, historical: bool
    ) -> tuple[str, Payload]:
        metrics = tuple(
            self._data_metric(message.device_id, c, historical) for c in message.changes
        )
        payload = Payload(
            timestamp_ms=self._clock_ms(),
            metrics=metrics,
            seq=self._next_seq(),
            uuid=message_id_uuid(message_id),
        )
        verb = MessageType.NDATA if message.device_id is None else MessageType.DDATA
        return self._topic(verb, message.device_id), payload

    async def report(
        self,
        device_id: str | None,
        values: Mapping[str, MetricValue],
        message_id: int,
        timestamp_ms: int | None = None,
    ) -> PublishOutcome | None:
        """`collect` then `publish_data` in one call (for callers without a store)."""
        message = self.collect(device_id, values, timestamp_ms)
        if message is None:
            return None
        return await self.publish_data(message, message_id)

    # ------------------------------------------------------------------ commands

    async def receive_command(self) -> CommandWrite:
        """The next NCMD/DCMD write, waiting for one."""
        return await self._commands.get()

    def receive_command_nowait(self) -> CommandWrite | None:
        """The next NCMD/DCMD write, or None if none is queued."""
        try:
            return self._commands.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def handle_message(self, topic: str, payload: bytes) -> None:
        """Process one incoming MQTT message (NCMD, DCMD, STATE). Bad input is counted
        and logged, never raised: one broken peer must not stop the receive loop."""
        try:
            parsed = parse_topic(topic)
            if parsed.message_type is MessageType.STATE:
                await self._handle_state(parsed.host_id, payload)
                return
            cfg = self._config
            if (parsed.group_id, parsed.edge_node_id) != (cfg.group_id, cfg.edge_node_id):
                return
            if parsed.message_type is MessageType.NCMD:
                await self._handle_command(None, payload)
            elif parsed.message_type is MessageType.DCMD and parsed.device_id is not None:
                await self._handle_command(parsed.device_id, payload)
        except (ConnectionLost, DriverTimeout):
            raise
        except DriverError as exc:
            reason = str(getattr(exc, "reason", type(exc).__name__))
            self._rejected[reason] += 1
            _log.warning("inbound_message_rejected", topic=topic, reason=reason, error=str(exc))

    async def _handle_state(self, host_id: str | None, payload: bytes) -> None:
        if host_id != self._config.primary_host_id:
            return
        state = decode_host_state(payload)
        if state.timestamp_ms is not None:
            if self._host_timestamp_ms is not None and state.timestamp_ms < self._host_timestamp_ms:
                self._counts["state_ignored"] += 1
                _log.info("host_state_stale_ignored", timestamp_ms=state.timestamp_ms)
                return
            self._host_timestamp_ms = state.timestamp_ms
        _log.info("host_state_received", host_id=host_id, online=state.online)
        self._host_online = state.online
        if state.online and self._state in (
            EdgeNodeState.WAITING_FOR_HOST,
            EdgeNodeState.HOLDING,
        ):
            await self.rebirth()
        elif not state.online and self._state is EdgeNodeState.ONLINE:
            self._state = EdgeNodeState.HOLDING
            self._ready.clear()
            _log.info("edge_node_holding_data", host_id=host_id)

    async def _handle_command(self, device_id: str | None, data: bytes) -> None:
        if device_id is not None and device_id not in self._devices:
            raise UnknownAliasError(f"DCMD for unknown device {device_id!r}")
        holder = self._node if device_id is None else self._devices[device_id]

        def datatype_of(name: str | None, alias: int | None) -> DataType | None:
            key = self._resolve(device_id, name, alias)
            if key == (None, REBIRTH_METRIC):
                return DataType.BOOLEAN
            return holder.specs[key[1]].datatype if key is not None else None

        payload = decode_payload(
            data, max_bytes=self._config.max_payload_bytes, datatype_of=datatype_of
        )
        writes: list[Metric] = []
        rebirth = False
        for metric in payload.metrics:
            key = self._resolve(device_id, metric.name, metric.alias)
            if key is None:
                raise UnknownAliasError(
                    f"command names unknown metric {metric.label()!r}"
                    + ("" if device_id is None else f" on device {device_id!r}")
                )
            if key == (None, REBIRTH_METRIC):
                rebirth = rebirth or metric.value is True
                continue
            spec = holder.specs[key[1]]
            if metric.datatype is not spec.datatype:
                raise DatatypeMismatchError(
                    f"command writes {spec.datatype.name} metric {key[1]!r}"
                    f" as {metric.datatype.name}"
                )
            writes.append(
                Metric(
                    name=key[1],
                    datatype=spec.datatype,
                    value=metric.value,
                    alias=self._aliases[key],
                    timestamp_ms=metric.timestamp_ms,
                )
            )
        if rebirth:
            self._counts["rebirth_requests"] += 1
            _log.info("rebirth_requested", bd_seq=self._bd_seq)
            if self._state in (EdgeNodeState.ONLINE,):
                await self.rebirth()
        if writes:
            self._counts["commands"] += 1
            try:
                self._commands.put_nowait(CommandWrite(device_id, tuple(writes)))
            except asyncio.QueueFull:
                self._counts["commands_dropped"] += 1
                if self._counts["commands_dropped"] == 1 or self._commands.qsize() == 0:
                    _log.warning("command_queue_full", dropped=self._counts["commands_dropped"])

    def _resolve(self, device_id: str | None, name: str | None, alias: int | None) -> _Key | None:
        if name is not None:
            if device_id is None and name == REBIRTH_METRIC:
                return (None, REBIRTH_METRIC)
            key = (device_id, name)
            return key if key in self._aliases else None
        if alias is not None:
            key2 = self._by_alias.get(alias)
            return key2 if key2 is not None and key2[0] == device_id else None
        return None

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> EdgeNodeStatistics:
        """A snapshot of the counters."""
        c = self._counts
        return EdgeNodeStatistics(
            state=self._state,
            bd_seq=self._bd_seq,
            next_seq=self._seq,
            births_published=c["births"],
            deaths_published=c["deaths"],
            data_published=c["data"],
            data_held=c["held"],
            values_suppressed=c["suppressed"],
            rebirth_requests=c["rebirth_requests"],
            commands_received=c["commands"],
            commands_dropped=c["commands_dropped"],
            state_messages_ignored=c["state_ignored"],
            inbound_rejected=tuple(sorted(self._rejected.items())),
        )

    # ------------------------------------------------------------------ internals

    def _topic(self, verb: MessageType, device_id: str | None = None) -> str:
        return message_topic(self._config.group_id, verb, self._config.edge_node_id, device_id)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % SEQ_MODULO
        return seq

    def _death_message(self) -> OutgoingMessage:
        payload = Payload(
            timestamp_ms=self._clock_ms(),
            metrics=(Metric(BD_SEQ_METRIC, DataType.INT64, self._bd_seq or 0),),
        )
        data = encode_payload(payload, max_bytes=self._config.max_payload_bytes)
        return OutgoingMessage(self._topic(MessageType.NDEATH), data, qos=1, retain=False)

    def _birth_metrics(self, device_id: str | None, holder: _Device) -> Iterable[Metric]:
        for name, spec in holder.specs.items():
            key = (device_id, name)
            value, stamp = self._current[key]
            self._reported[key] = value
            yield Metric(
                name=name,
                alias=self._aliases[key],
                datatype=spec.datatype,
                value=value,
                timestamp_ms=stamp,
                properties=spec.properties,
            )

    async def _publish_device_birth(self, device_id: str, device: _Device) -> None:
        payload = Payload(
            timestamp_ms=self._clock_ms(),
            metrics=tuple(self._birth_metrics(device_id, device)),
            seq=self._next_seq(),
        )
        await self._send(self._topic(MessageType.DBIRTH, device_id), payload, qos=0, retain=False)
        device.born = True
        self._counts["births"] += 1

    def _data_metric(self, device_id: str | None, change: MetricChange, historical: bool) -> Metric:
        holder = self._node if device_id is None else self._device(device_id)
        spec = holder.specs.get(change.name)
        if spec is None:
            raise MetricValueError(f"stored change names undeclared metric {change.name!r}")
        alias = self._aliases[(device_id, change.name)]
        return Metric(
            name=None if self._config.use_aliases else change.name,
            alias=alias,
            datatype=spec.datatype,
            value=change.value,
            timestamp_ms=change.timestamp_ms,
            is_historical=historical,
        )

    async def _send(self, topic: str, payload: Payload, *, qos: int, retain: bool) -> None:
        data = encode_payload(payload, max_bytes=self._config.max_payload_bytes)
        await self._call(self._transport.publish(topic, data, qos, retain), f"publish {topic}")

    async def _call(self, operation: Awaitable[None], what: str) -> None:
        try:
            async with asyncio.timeout(self._config.network_timeout_s):
                await operation
        except TimeoutError as exc:
            if isinstance(exc, DriverTimeout):
                raise
            raise DriverTimeout(
                f"{what} took longer than {self._config.network_timeout_s} s"
            ) from exc
