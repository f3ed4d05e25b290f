"""`EdgeLink`: one Sparkplug B edge node with store-and-forward, on the project's MQTT client.

It wires four parts into one edge-side session:

* an `EdgeNode` (Sparkplug state machine: bdSeq, seq, aliases, report by exception, STATE);
* a `MessageStore` (SQLite WAL): every collected DATA message is committed before it is sent
  and deleted only at its PUBACK, so nothing is lost across broker outages or a SIGKILL;
* one `MqttClient` per MQTT session: `EdgeNode.begin_session()` advances bdSeq and sets the
  NDEATH will *before* each CONNECT, which a client's fixed config can only do by building a
  fresh client per session (the client's own backoff still paces failed attempts);
* a Sparkplug-aware forwarder (below).

Why not `StoreForwardPublisher`: it sends as soon as MQTT is connected, but Sparkplug data must
wait for the NBIRTH/DBIRTHs and must be held while the primary host is offline, and `seq` has to
be assigned by the edge node in the order messages actually leave. This forwarder keeps the
publisher's rules: per stream (one per device, "" for the node) the stored backlog leaves in id
order before newer data of that stream; messages stored before the node became ready (outage,
host offline, an earlier process) are replayed with `is_historical` at `replay_rate_msgs_per_s`,
shared round-robin, while streams without backlog send live data at once. The 64-bit store id
travels in the payload `uuid` for end-to-end dedupe.

Per live message the work is done once: `collect` encodes both the stored and the wire form,
the commit is shared (`report_many`, or concurrent `report`s), the committed message waits in
memory (`live_buffer`) rather than being read back, is framed around its pre-encoded metrics
(seq, time, id) and is deleted at PUBACK in a range with its neighbours. Replayed (historical)
messages and messages of an earlier process are decoded and encoded again.

```python
config = EdgeLinkConfig(mqtt=MqttClientConfig(port=port), node=EdgeNodeConfig(...),
                        store=StoreConfig(path=Path("edge.db")))
async with EdgeLink(config, devices={"pump": [MetricSpec("speed", DataType.DOUBLE, 0.0)]}) as link:
    await link.wait_ready()
    await link.report("pump", {"speed": 1450.0})      # durable on return; None if suppressed
    await link.report_many([("pump", {"speed": 1460.0}), ("valve", {"open": True})])  # one commit
    command = await link.receive_command()            # a DCMD/NCMD write
```
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import enum
import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    ProtocolError,
    SecurityError,
)
from drivers.mqtt._session import Delivery
from drivers.mqtt.client import MqttClient
from drivers.mqtt.config import MqttClientConfig, WillConfig
from drivers.mqtt.replay import ReplayStream, TokenBucket
from drivers.mqtt.sparkplug import (
    CommandWrite,
    DataMessage,
    EdgeNode,
    EdgeNodeConfig,
    EdgeNodeState,
    MessageType,
    MetricSpec,
    MetricValue,
    PublishOutcome,
    message_topic,
)
from drivers.mqtt.sparkplug import OutgoingMessage as SparkplugMessage
from drivers.mqtt.store import MessageStore, StoreConfig, StoredMessage
from drivers.mqtt.subscription import Subscription

__all__ = [
    "CommandListener",
    "EdgeLink",
    "EdgeLinkConfig",
    "EdgeLinkState",
    "EdgeLinkStatistics",
]

_log = structlog.get_logger(__name__)

CommandListener = Callable[[CommandWrite], None]
"""Called on the event loop for every NCMD/DCMD write; must not block."""

_NODE_STREAM = ""
_DECODED_LIMIT = 32768


class EdgeLinkConfig(BaseModel):
    """Broker connection, Sparkplug identity, store and replay pacing of one edge link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mqtt: MqttClientConfig
    """`will` must be unset: the link sets the NDEATH will per session."""
    node: EdgeNodeConfig
    """`data_qos` must be 1: a message leaves the store only at its PUBACK."""
    store: StoreConfig
    replay_rate_msgs_per_s: float = Field(default=5000.0, gt=0)
    """Historical messages per second at most (all streams together)."""
    replay_burst: int = Field(default=200, ge=1)
    fetch_batch: int = Field(default=512, ge=1)
    live_buffer: int = Field(default=8192, ge=1)
    """Committed messages per stream kept in memory until sent; past this, a fast producer's
    messages are read back from the store instead (memory against a re-read)."""
    sends_per_turn: int = Field(default=64, ge=1)
    command_queue_size: int = Field(default=256, ge=1)
    """Commands kept for `receive_command()`; past it the oldest is dropped (counted)."""
    inbox_capacity: int = Field(default=1000, ge=1)
    """Incoming NCMD/DCMD/STATE messages buffered per subscription."""
    connect_wait_s: float = Field(default=1.0, gt=0)
    """How often a session that cannot connect re-checks for a fatal error."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.mqtt.will is not None:
            raise ValueError("mqtt.will must be unset: the edge link sets NDEATH as the will")
        if self.node.data_qos != 1:
            raise ValueError("node.data_qos must be 1 for store-and-forward")
        return self


class EdgeLinkState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    FAILED = "failed"
    """A fatal error (rejected credentials or certificate) stopped the sessions."""
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class EdgeLinkStatistics:
    """Counters of one edge link (see `EdgeLink.statistics`)."""

    state: EdgeLinkState
    node_state: EdgeNodeState
    connected: bool
    backlog: int
    """Messages stored and not yet acknowledged by the broker."""
    backlog_bytes: int
    stored: int
    suppressed: int
    """Values inside their deadband or unchanged (report by exception)."""
    sent_live: int
    replayed: int
    """Messages sent with is_historical."""
    acked: int
    held: int
    """Reports stored while the node could not send (disconnected, primary host offline)."""
    dropped: int
    """Store overflow (oldest dropped, new rejected, expired) plus unsendable stored messages."""
    rejected_by_broker: int
    sessions: int
    connect_failures: int
    security_failures: int
    commands_received: int
    commands_dropped: int
    inbound_rejected: tuple[tuple[str, int], ...]
    last_error: str | None
    bytes_published: int = 0
    """Topic + payload bytes of every PUBLISH handed to the broker (births, data, replays)."""


@dataclass(slots=True)
class _Counters:
    sent_live: int = 0
    replayed: int = 0
    acked: int = 0
    held: int = 0
    unsendable: int = 0
    rejected_by_broker: int = 0
    sessions: int = 0
    connect_failures: int = 0
    security_failures: int = 0
    commands_dropped: int = 0
    rejected_reports: int = 0




# Deliveries of DATA publishes are collected here (per task) instead of awaited, so the
# forwarder keeps a window of messages in flight and acknowledges the store at each PUBACK.
_delivery_sink: contextvars.ContextVar[list[Delivery] | None] = contextvars.ContextVar(
    "edge_link_delivery_sink", default=None
)


class _ClientTransport:
    """`SparkplugTransport` on the current session's `MqttClient`."""

    def __init__(self, inbox_capacity: int) -> None:
        self.client: MqttClient | None = None
        self.will: SparkplugMessage | None = None
        self.subscriptions: list[Subscription] = []
        self._inbox_capacity = inbox_capacity
        self.bytes_published = 0

    def set_will(self, will: SparkplugMessage | None) -> None:
        self.will = will

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        client = self.client
        if client is None:
            raise ConnectionLost("edge link is not connected")
        delivery = client.publish_nowait(topic, payload, qos, retain)
        if delivery is None:  # the in-flight window is full: wait for room
            delivery = await client.publish(topic, payload, qos, retain)
        self.bytes_published += len(topic.encode()) + len(payload)
        sink = _delivery_sink.get()
        if sink is not None:
            sink.append(delivery)
        elif qos > 0:
            await delivery.acked

    async def subscribe(self, topic: str, qos: int) -> None:
        client = self.client
        if client is None:
            raise ConnectionLost("edge link is not connected")
        subscription = await client.subscribe(topic, qos, capacity=self._inbox_capacity)
        self.subscriptions.append(subscription)


class EdgeLink:
    """A Sparkplug B edge node with durable store-and-forward (see the module docstring).

    One-shot async context manager; it owns the store, the per-session MQTT clients and all
    tasks (one TaskGroup). `aclose()` publishes NDEATH if connected and keeps the backlog
    stored for the next run.
    """

    def __init__(
        self,
        config: EdgeLinkConfig,
        *,
        node_metrics: Sequence[MetricSpec] = (),
        devices: Mapping[str, Sequence[MetricSpec]] | None = None,
    ) -> None:
        self._config = config
        self._transport = _ClientTransport(config.inbox_capacity)
        self._node = EdgeNode(config.node, self._transport, node_metrics=node_metrics)
        self._initial_devices = dict(devices or {})
        self._store = MessageStore(config.store)
        self._state = EdgeLinkState.NEW
        self._counters = _Counters()
        self._fatal: DriverError | None = None
        self._last_error: str | None = None
        self._listeners: list[CommandListener] = []
        self._commands: collections.deque[CommandWrite] = collections.deque()
        self._command_ready = asyncio.Event()
        self._queue_commands = False
        """Commands are queued for `receive_command` once it is used or if no listener exists."""
        self._streams: dict[str, ReplayStream] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: MqttClient | None = None
        self._decoded: dict[bytes, DataMessage] = {}
        """Messages reported by this process and not yet sent, by stored bytes: saves decoding
        them again at send time (bounded by `_DECODED_LIMIT`; misses are decoded)."""
        self._topics: dict[str | None, str] = {}
        self._boundary_id: int | None = None
        """Stored ids up to this one go out as historical (set whenever the node turns ready)."""

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not EdgeLinkState.NEW:
            raise RuntimeError(f"EdgeLink is one-shot; state is {self._state.value}")
        await self._store.__aenter__()
        try:
            for device_id, specs in self._initial_devices.items():
                await self._node.add_device(device_id, specs)
            self._store.add_append_listener(self._on_appended)
            self._task_group = asyncio.TaskGroup()
            await self._task_group.__aenter__()
        except BaseException:
            await self._store.aclose()
            raise
        self._state = EdgeLinkState.RUNNING
        self._tasks = [
            self._task_group.create_task(self._sessions(), name="edge-link-sessions"),
            self._task_group.create_task(self._pump_commands(), name="edge-link-commands"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """NDEATH if connected, stop every task, commit acks, close the store. Idempotent."""
        if self._state in (EdgeLinkState.CLOSING, EdgeLinkState.CLOSED):
            return
        if self._state is EdgeLinkState.NEW:
            self._state = EdgeLinkState.CLOSED
            return
        self._state = EdgeLinkState.CLOSING
        self._signal()
        try:
            try:
                async with asyncio.timeout(self._config.node.network_timeout_s):
                    await self._node.aclose()
            except TimeoutError:
                _log.warning("edge_link_death_timeout")
            for task in self._tasks:
                task.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            await self._store.aclose()
            self._state = EdgeLinkState.CLOSED
            _log.info("edge_link_closed", edge_node_id=self._config.node.edge_node_id)

    # ---- properties ---------------------------------------------------------------------------

    @property
    def state(self) -> EdgeLinkState:
        return self._state

    @property
    def node(self) -> EdgeNode:
        """The Sparkplug edge node (aliases, bdSeq, node statistics)."""
        return self._node

    @property
    def config(self) -> EdgeLinkConfig:
        return self._config

    @property
    def is_ready(self) -> bool:
        """True while data goes out live (connected, born, primary host online)."""
        return self._node.can_publish and self._transport.client is not None

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until data goes out live; raises the fatal error (e.g. `SecurityError`) if the
        link FAILED and `DriverTimeout` when `timeout_s` passes."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self.is_ready:
                    self._raise_if_finished()
                    changed = self._changed
                    await changed.wait()
        except TimeoutError as exc:
            raise DriverTimeout(
                f"edge node not ready within {timeout_s} s (last error: {self._last_error})"
            ) from exc

    async def wait_drained(self, timeout_s: float | None = None) -> None:
        """Wait until the store holds nothing unacknowledged (every message reached the broker)."""
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    await self._store.flush()
                    if self._store.statistics().pending_messages == 0:
                        return
                    self._raise_if_finished()
                    await asyncio.sleep(0.02)
        except TimeoutError as exc:
            backlog = self._store.statistics().pending_messages
            raise DriverTimeout(f"{backlog} messages still stored after {timeout_s} s") from exc

    def _raise_if_finished(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._state is not EdgeLinkState.RUNNING:
            raise ConnectionLost(f"edge link is {self._state.value}")

    def _signal(self) -> None:
        if self._node.can_publish and self._transport.client is not None:
            if self._boundary_id is None:
                self._boundary_id = self._store.last_id
        else:
            self._boundary_id = None
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        self._wake.set()

    # ---- application API ----------------------------------------------------------------------

    async def add_device(self, device_id: str, metrics: Sequence[MetricSpec]) -> None:
        """Declare a device (its DBIRTH goes out now if online, else with the next births)."""
        await self._node.add_device(device_id, metrics)

    async def report(
        self,
        device_id: str | None,
        values: Mapping[str, MetricValue],
        timestamp_ms: int | None = None,
    ) -> int | None:
        """Report values of the node (None) or a device, by exception.

        The changes worth sending (deadband, unchanged values suppressed) are batched into one
        DATA message, committed to the store and sent at QoS 1 when possible. Returns the store
        id (durable on return), or None when nothing changed enough. Raises `MetricValueError`
        for undeclared metrics or ill-typed values, `StoreError` if the store refuses.
        """
        self._check_reporting()
        prepared = self._prepare(device_id, values, timestamp_ms)
        if prepared is None:
            return None
        try:
            stored = await self._store.append(*prepared)
        except BaseException:
            self._decoded.pop(prepared[2], None)
            raise
        return stored.id

    async def report_many(
        self,
        reports: Sequence[tuple[str | None, Mapping[str, MetricValue]]],
        timestamp_ms: int | None = None,
    ) -> list[int | None]:
        """`report` for several (device_id, values) pairs, in order, with one store commit
        (group commit without a task per report): one DATA message per pair.

        Returns the store ids (None where nothing changed enough), all durable on return.
        Behaves like calling `report` for each pair and stopping at the first error: a
        `MetricValueError` is raised after the pairs before it are stored; a `StoreError`
        (e.g. `StoreFullError` under reject_new) after everything that fitted is stored.
        """
        self._check_reporting()
        prepared: list[tuple[str, str, bytes] | None] = []
        failure: DriverError | None = None
        for device_id, values in reports:
            try:
                prepared.append(self._prepare(device_id, values, timestamp_ms))
            except DriverError as exc:
                failure = exc
                break
        messages = [message for message in prepared if message is not None]
        try:
            outcomes = iter(await self._store.append_many(messages))
        except BaseException:
            for _stream, _topic, payload in messages:
                self._decoded.pop(payload, None)
            raise
        ids: list[int | None] = []
        store_failure: DriverError | None = None  # earlier in order than a collect failure
        for item in prepared:
            if item is None:
                ids.append(None)
                continue
            outcome = next(outcomes)
            if isinstance(outcome, DriverError):
                self._decoded.pop(item[2], None)
                store_failure = store_failure or outcome
                ids.append(None)
            else:
                ids.append(outcome.id)
        if store_failure is not None:
            raise store_failure
        if failure is not None:
            raise failure
        return ids

    def _check_reporting(self) -> None:
        if self._state not in (EdgeLinkState.RUNNING, EdgeLinkState.FAILED):
            raise ConnectionLost(f"edge link is {self._state.value}")

    def _prepare(
        self, device_id: str | None, values: Mapping[str, MetricValue], timestamp_ms: int | None
    ) -> tuple[str, str, bytes] | None:
        """Collect one report into (stream, topic, payload) for the store, or None."""
        message = self._node.collect(device_id, values, timestamp_ms)
        if message is None:
            return None
        topic = self._topics.get(device_id)
        if topic is None:
            topic = self._topics[device_id] = message_topic(
                self._config.node.group_id,
                MessageType.NDATA if device_id is None else MessageType.DDATA,
                self._config.node.edge_node_id,
                device_id,
            )
        if not self.is_ready:
            self._counters.held += 1
        payload = message.to_bytes()
        if len(self._decoded) < _DECODED_LIMIT:
            self._decoded[payload] = message
        return device_id or _NODE_STREAM, topic, payload

    def add_command_listener(self, listener: CommandListener) -> None:
        """Call `listener` for every NCMD/DCMD write (deploy agents, twins, command FBs)."""
        self._listeners.append(listener)

    def remove_command_listener(self, listener: CommandListener) -> None:
        """Stop calling `listener` (no error if it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def receive_command(self) -> CommandWrite:
        """The next NCMD/DCMD write (also delivered to listeners), waiting for one.

        Commands are kept for this call only once it (or `receive_command_nowait`) has been
        used, or while no listener is registered: the newest `command_queue_size` of them,
        older ones dropped and counted.
        """
        self._queue_commands = True
        while not self._commands:
            self._raise_if_finished()
            self._command_ready.clear()
            await self._command_ready.wait()
        return self._commands.popleft()

    def receive_command_nowait(self) -> CommandWrite | None:
        """The next NCMD/DCMD write, or None."""
        self._queue_commands = True
        return self._commands.popleft() if self._commands else None

    async def _pump_commands(self) -> None:
        while True:
            command = await self._node.receive_command()
            if self._queue_commands or not self._listeners:
                if len(self._commands) >= self._config.command_queue_size:
                    self._commands.popleft()
                    self._counters.commands_dropped += 1
                    _log.warning(
                        "edge_link_command_dropped", dropped=self._counters.commands_dropped
                    )
                self._commands.append(command)
                self._command_ready.set()
            for listener in self._listeners:
                try:
                    listener(command)
                except DriverError as exc:
                    _log.warning("edge_link_command_listener_failed", error=str(exc))

    # ---- sessions -----------------------------------------------------------------------------

    async def _sessions(self) -> None:
        while self._state is EdgeLinkState.RUNNING:
            will = self._node.begin_session()
            mqtt = self._config.mqtt.model_copy(
                update={
                    "will": WillConfig(
                        topic=will.topic, payload=will.payload, qos=1, retain=will.retain
                    )
                }
            )
            try:
                async with MqttClient(mqtt) as client:
                    self._client = client
                    try:
                        if not await self._connect(client):
                            return
                        await self._run_session(client)
                    finally:
                        stats = client.statistics()
                        self._counters.connect_failures += stats.connect_failures
                        self._counters.security_failures += stats.security_failures
                        self._client = None
            except (ConnectionLost, DriverTimeout) as exc:
                self._last_error = str(exc)
                _log.warning("edge_link_session_failed", error=str(exc))
            finally:
                self._transport.client = None
                self._transport.subscriptions = []
                self._node.on_connection_lost()
                self._signal()

    async def _connect(self, client: MqttClient) -> bool:
        """Wait for the first CONNACK of this client; False when the failure is fatal."""
        while True:
            try:
                await client.wait_connected(self._config.connect_wait_s)
                return True
            except DriverTimeout:
                if self._state is not EdgeLinkState.RUNNING:
                    return False
                continue
            except (SecurityError, DriverConfigError) as exc:
                self._fatal = exc
                self._last_error = str(exc)
                self._state = EdgeLinkState.FAILED
                _log.error("edge_link_failed", error=str(exc))
                self._signal()
                return False

    async def _run_session(self, client: MqttClient) -> None:
        self._counters.sessions += 1
        self._transport.client = client
        self._transport.subscriptions = []
        await self._node.on_connected()
        self._signal()
        _log.info(
            "edge_link_session_started",
            node_state=self._node.state.value,
            historical_through_id=self._boundary_id,
        )
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._receive(sub), name=f"edge-link-inbox-{sub.topic_filter}")
                for sub in self._transport.subscriptions
            ]
            tasks.append(group.create_task(self._forward(client), name="edge-link-forwarder"))
            await client.wait_disconnected()
            for task in tasks:
                task.cancel()
        self._last_error = client.statistics().last_error

    async def _receive(self, subscription: Subscription) -> None:
        async for message in subscription:
            was_ready = self._node.can_publish
            try:
                await self._node.handle_message(message.topic, message.payload)
            except DriverError as exc:  # a failed rebirth publish: the session watcher decides
                _log.warning("edge_link_inbound_failed", topic=message.topic, error=str(exc))
            if self._node.can_publish != was_ready:
                self._signal()

    # ---- forwarding ---------------------------------------------------------------------------

    def _on_appended(self, message: StoredMessage) -> None:
        stream = self._streams.get(message.stream)
        if stream is None:
            stream = self._streams[message.stream] = ReplayStream(message.stream, in_db=False)
        stream.appends_seen += 1
        if message.id <= stream.cursor:
            return
        if not stream.in_db and len(stream.buffer) < self._config.live_buffer:
            stream.buffer.append(message)
            stream.cursor = message.id
        else:
            stream.in_db = True
        self._wake.set()

    async def _reset_streams(self) -> None:
        self._streams = {}
        self._decoded.clear()  # drop entries of messages the store overflowed or expired
        for name in await self._store.pending_by_stream():
            stream = self._streams.get(name)
            if stream is None:
                self._streams[name] = ReplayStream(name)
            else:
                stream.buffer.clear()
                stream.cursor = 0
                stream.in_db = True

    async def _forward(self, client: MqttClient) -> None:
        try:
            await self._reset_streams()
        except DriverError as exc:
            _log.error("edge_link_store_unreadable", error=str(exc))
            return
        bucket = TokenBucket(self._config.replay_rate_msgs_per_s, self._config.replay_burst)
        while client.is_connected:
            boundary_id = self._boundary_id
            if boundary_id is None or not self._node.can_publish:
                changed = self._changed
                await changed.wait()
                continue
            self._wake.clear()
            progressed = throttled = False
            try:
                for stream in list(self._streams.values()):
                    sent, limited = await self._pump(stream, bucket, boundary_id)
                    progressed = progressed or sent
                    throttled = throttled or limited
            except ConnectionLost:
                await client.wait_disconnected()
                return
            except DriverError as exc:
                # window stuck past its deadline or a store read failed: start over from the
                # store (messages in flight may go twice; the consumer dedupes by id)
                _log.warning("edge_link_forwarder_restarted", error=str(exc))
                await asyncio.sleep(0.5)
                await self._reset_streams()
                continue
            if not progressed:
                timeout_s = bucket.seconds_to_next() if throttled else None
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass  # a replay token is due

    async def _pump(
        self, stream: ReplayStream, bucket: TokenBucket, boundary_id: int
    ) -> tuple[bool, bool]:
        """Send up to `sends_per_turn` messages of `stream`, in batches of what the buffer
        holds; returns (progressed, throttled by the replay rate)."""
        progressed = False
        budget = self._config.sends_per_turn
        buffer = stream.buffer
        while budget > 0:
            if not buffer and stream.in_db:
                await stream.refill(self._store, self._config.fetch_batch)
                progressed = True
            removed_through = self._store.removed_through_id
            while buffer and buffer[0].id <= removed_through:
                buffer.popleft()  # ids only grow: the removed ones are a prefix
                budget -= 1
            if not buffer:
                return progressed, False
            batch: list[tuple[StoredMessage, bool]] = []
            throttled = False
            for stored in itertools.islice(buffer, max(budget, 1)):
                historical = stored.id <= boundary_id
                if historical and not bucket.take():
                    throttled = True
                    break
                batch.append((stored, historical))
            if batch:
                done, held = await self._send_many(batch)
                for _ in range(done):
                    buffer.popleft()
                progressed = progressed or done > 0
                budget -= len(batch)
                if held:
                    return progressed, False
            if throttled:
                return progressed, True
        return progressed, False

    async def _send_many(self, batch: list[tuple[StoredMessage, bool]]) -> tuple[int, bool]:
        """Publish a batch in order; returns how many are done with (sent or discarded) and
        whether the node held the next one."""
        items: list[tuple[DataMessage, int, bool]] = []
        stored_of_item: list[StoredMessage] = []
        done = 0
        for stored, historical in batch:
            message = self._decoded.pop(stored.payload, None)
            if message is None:
                try:
                    message = DataMessage.from_bytes(stored.payload)
                except ProtocolError as exc:
                    if not items:  # discard only where order allows: at the batch's head
                        self._discard(stored, exc)
                        done += 1
                        continue
                    break  # sent first: the broken one heads the next batch
            items.append((message, stored.id, historical))
            stored_of_item.append(stored)
        if not items:
            return done, False
        sink: list[Delivery] = []
        token = _delivery_sink.set(sink)
        try:
            results = await self._node.publish_data_many(items)
        finally:
            _delivery_sink.reset(token)
        deliveries = iter(sink)
        for stored, (_message, _id, historical), result in zip(
            stored_of_item, items, results, strict=False
        ):
            if result is PublishOutcome.HELD:
                return done, True
            done += 1
            if isinstance(result, DriverConfigError):  # names a metric or device no longer declared
                self._discard(stored, result)
                continue
            if historical:
                self._counters.replayed += 1
            else:
                self._counters.sent_live += 1
            delivery = next(deliveries)
            delivery.acked.add_done_callback(functools.partial(self._on_acked, stored.id))
        return done, False

    def _discard(self, stored: StoredMessage, exc: DriverError) -> None:
        self._counters.unsendable += 1
        self._store.ack(stored.id)
        _log.error("edge_link_stored_message_unsendable", store_id=stored.id, error=str(exc))

    def _on_acked(self, message_id: int, acked: asyncio.Future[None]) -> None:
        if acked.cancelled():
            return
        error = acked.exception()
        if error is None:
            self._counters.acked += 1
            self._store.ack(message_id)
        elif isinstance(error, ProtocolError):
            self._counters.rejected_by_broker += 1
            self._store.ack(message_id)
            _log.warning("edge_link_message_rejected", store_id=message_id, error=str(error))

    # ---- statistics ---------------------------------------------------------------------------

    def statistics(self) -> EdgeLinkStatistics:
        store = self._store.statistics()
        node = self._node.statistics()
        counters = self._counters
        client = self._client.statistics() if self._client is not None else None
        return EdgeLinkStatistics(
            state=self._state,
            node_state=node.state,
            connected=self._transport.client is not None,
            backlog=store.pending_messages,
            backlog_bytes=store.pending_bytes,
            stored=store.appended,
            suppressed=node.values_suppressed,
            sent_live=counters.sent_live,
            replayed=counters.replayed,
            acked=counters.acked,
            held=counters.held,
            dropped=store.dropped_oldest + store.rejected_new + store.expired + counters.unsendable,
            rejected_by_broker=counters.rejected_by_broker,
            sessions=counters.sessions,
            connect_failures=counters.connect_failures
            + (client.connect_failures if client is not None else 0),
            security_failures=counters.security_failures
            + (client.security_failures if client is not None else 0),
            commands_received=node.commands_received,
            commands_dropped=counters.commands_dropped + node.commands_dropped,
            inbound_rejected=node.inbound_rejected,
            last_error=self._last_error,
            bytes_published=self._transport.bytes_published,
        )
