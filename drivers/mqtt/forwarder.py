"""Store-and-forward publisher: QoS 1 messages go to the store first, then out from it.

Order and fairness, per stream (by default the topic):

* every message is read back from the store in id order, so a stream's backlog always leaves
  before that stream's newer (live) data;
* historical messages (stored before the current session began: during an outage, or by an
  earlier process) leave at `replay_rate_msgs_per_s` at most, shared round-robin by the streams
  that have a backlog, while streams without one send live data at once;
* the encoder sees `OutgoingMessage.historical` and the 64-bit `store_id`, so the Sparkplug layer
  can set `is_historical` and carry the id for end-to-end dedupe (`stamp_store_id` does this for
  plain payloads);
* a message leaves the store only at its PUBACK; a connection lost before that re-sends it in the
  next session, so the consumer sees it at least once and drops duplicates by id.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import struct
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import ConnectionLost, DriverError, ProtocolError
from drivers.mqtt.client import ClientState, MqttClient
from drivers.mqtt.replay import ReplayStream, TokenBucket
from drivers.mqtt.store import MessageStore, StoredMessage

__all__ = [
    "ForwarderConfig",
    "ForwarderState",
    "ForwarderStatistics",
    "MessageEncoder",
    "OutgoingMessage",
    "StampedPayload",
    "StoreForwardPublisher",
    "parse_stamped",
    "raw_payload",
    "stamp_store_id",
]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What the encoder gets for each message about to be sent."""

    store_id: int
    stream: str
    topic: str
    payload: bytes
    historical: bool
    created_ns: int


MessageEncoder = Callable[[OutgoingMessage], bytes]
"""Turns a stored payload into the bytes on the wire, at send time (may add id, seq, flags)."""


def raw_payload(message: OutgoingMessage) -> bytes:
    """Send the payload exactly as it was stored."""
    return message.payload


_STAMP = struct.Struct(">QB")


@dataclass(frozen=True, slots=True)
class StampedPayload:
    store_id: int
    historical: bool
    payload: bytes


def stamp_store_id(message: OutgoingMessage) -> bytes:
    """Prefix the payload with the 8-byte big-endian store id and a historical flag byte."""
    return _STAMP.pack(message.store_id, int(message.historical)) + message.payload


def parse_stamped(data: bytes) -> StampedPayload:
    """Inverse of `stamp_store_id`."""
    if len(data) < _STAMP.size:
        raise ProtocolError(f"stamped payload too short: {len(data)} bytes")
    store_id, historical = _STAMP.unpack_from(data)
    return StampedPayload(store_id, bool(historical), bytes(data[_STAMP.size :]))


class ForwarderConfig(BaseModel):
    """How the backlog drains after a reconnect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replay_rate_msgs_per_s: float = Field(default=500.0, gt=0)
    replay_burst: int = Field(default=50, ge=1)
    fetch_batch: int = Field(default=256, ge=1)
    """Messages read from the store per query (and buffered per stream) at most."""
    sends_per_turn: int = Field(default=32, ge=1)
    """Messages one stream may send before the next stream's turn."""


class ForwarderState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ForwarderStatistics:
    state: ForwarderState
    sent_live: int
    sent_historical: int
    acked: int
    rejected_by_broker: int
    skipped_removed: int
    sessions: int
    backlog_streams: int




@dataclass(slots=True)
class _Counters:
    sent_live: int = 0
    sent_historical: int = 0
    acked: int = 0
    rejected_by_broker: int = 0
    skipped_removed: int = 0
    sessions: int = 0


class StoreForwardPublisher:
    """Publishes QoS 1 messages through a `MessageStore` over an `MqttClient`.

    The caller owns the client and the store (and opens them first); this object owns the
    forwarding task.

    ```python
    async with (
        MqttClient(client_config) as client,
        MessageStore(StoreConfig(path=path)) as store,
        StoreForwardPublisher(client, store, encoder=stamp_store_id) as publisher,
    ):
        store_id = await publisher.publish("plant/level", b"1.5")   # durable on return
    ```
    """

    def __init__(
        self,
        client: MqttClient,
        store: MessageStore,
        config: ForwarderConfig | None = None,
        encoder: MessageEncoder = raw_payload,
    ) -> None:
        self._client = client
        self._store = store
        self._config = config or ForwarderConfig()
        self._encoder = encoder
        self._state = ForwarderState.NEW
        self._streams: dict[str, ReplayStream] = {}
        self._boundary_id = 0
        self._wake = asyncio.Event()
        self._counters = _Counters()
        self._task_group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self._state is not ForwarderState.NEW:
            raise RuntimeError(f"StoreForwardPublisher is one-shot; state is {self._state.value}")
        self._store.add_append_listener(self._on_appended)
        self._client.add_state_listener(self._on_client_state)
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._task = self._task_group.create_task(self._forward(), name="mqtt-forwarder")
        self._state = ForwarderState.RUNNING
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop forwarding (stored messages stay for the next run). Idempotent."""
        if self._state in (ForwarderState.CLOSING, ForwarderState.CLOSED):
            return
        if self._state is ForwarderState.NEW:
            self._state = ForwarderState.CLOSED
            return
        self._state = ForwarderState.CLOSING
        try:
            if self._task is not None:
                self._task.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            self._state = ForwarderState.CLOSED

    @property
    def state(self) -> ForwarderState:
        return self._state

    async def publish(
        self, topic: str, payload: bytes, *, stream: str | None = None, retain: bool = False
    ) -> int:
        """Store one QoS 1 message (durable on return) and return its store id."""
        if self._state is not ForwarderState.RUNNING:
            raise ConnectionLost(f"publisher is {self._state.value}")
        stored = await self._store.append(stream or topic, topic, payload, qos=1, retain=retain)
        return stored.id

    # ---- listeners (event loop) ---------------------------------------------------------------

    def _on_appended(self, message: StoredMessage) -> None:
        stream = self._streams.get(message.stream)
        if stream is None:
            stream = self._streams[message.stream] = ReplayStream(message.stream, in_db=False)
        stream.appends_seen += 1
        if message.id <= stream.cursor:
            return
        if not stream.in_db and len(stream.buffer) < self._config.fetch_batch:
            stream.buffer.append(message)
            stream.cursor = message.id
        else:
            stream.in_db = True
        self._wake.set()

    def _on_client_state(self, _state: ClientState) -> None:
        self._wake.set()

    # ---- forwarding ---------------------------------------------------------------------------

    async def _forward(self) -> None:
        seen_session = 0
        while True:
            try:
                await self._client.wait_session_change(seen_session)
            except DriverError as exc:
                _log.warning("mqtt_forwarder_stopped", error=str(exc))
                return
            seen_session = self._client.session_id
            self._counters.sessions += 1
            try:
                await self._run_session(seen_session)
            except ConnectionLost as exc:
                _log.info("mqtt_forwarder_session_ended", session_id=seen_session, error=str(exc))
            except DriverError as exc:
                # window stuck past its deadline or a store read failed: start over from the
                # store (in-flight messages may be sent twice; consumers dedupe by id)
                _log.warning(
                    "mqtt_forwarder_restarted", session_id=seen_session, error=str(exc)
                )
                await asyncio.sleep(1.0)
                seen_session = 0

    async def _run_session(self, session_id: int) -> None:
        self._boundary_id = self._store.last_id
        self._streams = {}
        for name in await self._store.pending_by_stream():
            stream = self._streams.get(name)
            if stream is None:
                self._streams[name] = ReplayStream(name)
            else:
                # appended while we counted: read the whole stream back from the store, in order
                stream.buffer.clear()
                stream.cursor = 0
                stream.in_db = True
        bucket = TokenBucket(self._config.replay_rate_msgs_per_s, self._config.replay_burst)
        _log.info(
            "mqtt_forwarder_session_started",
            session_id=session_id,
            historical_through_id=self._boundary_id,
            backlog_streams=len(self._streams),
        )
        while self._client.is_connected and self._client.session_id == session_id:
            self._wake.clear()
            progressed = False
            throttled = False
            for stream in list(self._streams.values()):
                sent, limited = await self._pump(stream, bucket)
                progressed = progressed or sent
                throttled = throttled or limited
            if not progressed:
                timeout_s = bucket.seconds_to_next() if throttled else None
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass  # a replay token is due

    async def _pump(self, stream: ReplayStream, bucket: TokenBucket) -> tuple[bool, bool]:
        """Send up to sends_per_turn messages of one stream; returns (progressed, throttled)."""
        progressed = False
        for _ in range(self._config.sends_per_turn):
            if not stream.buffer and stream.in_db:
                await stream.refill(self._store, self._config.fetch_batch)
                progressed = True
            if not stream.buffer:
                return progressed, False
            message = stream.buffer[0]
            if message.id <= self._store.removed_through_id:
                stream.buffer.popleft()  # dropped or expired by the store meanwhile
                self._counters.skipped_removed += 1
                continue
            historical = message.id <= self._boundary_id
            if historical and not bucket.take():
                return progressed, True
            outgoing = OutgoingMessage(
                store_id=message.id,
                stream=message.stream,
                topic=message.topic,
                payload=message.payload,
                historical=historical,
                created_ns=message.created_ns,
            )
            delivery = await self._client.publish(
                message.topic, self._encoder(outgoing), qos=message.qos, retain=message.retain
            )
            stream.buffer.popleft()
            progressed = True
            if historical:
                self._counters.sent_historical += 1
            else:
                self._counters.sent_live += 1
            delivery.acked.add_done_callback(functools.partial(self._on_acked, message.id))
        return progressed, False

    def _on_acked(self, message_id: int, acked: asyncio.Future[None]) -> None:
        if acked.cancelled():
            return
        error = acked.exception()
        if error is None:
            self._counters.acked += 1
            self._store.ack(message_id)
        elif isinstance(error, ProtocolError):
            # the broker refused it (MQTT 5 reason code): re-sending would loop forever
            self._counters.rejected_by_broker += 1
            self._store.ack(message_id)
            _log.warning("mqtt_message_rejected", store_id=message_id, error=str(error))

    def statistics(self) -> ForwarderStatistics:
        counters = self._counters
        return ForwarderStatistics(
            state=self._state,
            sent_live=counters.sent_live,
            sent_historical=counters.sent_historical,
            acked=counters.acked,
            rejected_by_broker=counters.rejected_by_broker,
            skipped_removed=counters.skipped_removed,
            sessions=counters.sessions,
            backlog_streams=sum(1 for s in self._streams.values() if s.buffer or s.in_db),
        )
