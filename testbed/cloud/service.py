"""`CloudService`: the Sparkplug B primary host application of the testbed's cloud side.

It announces itself with a retained STATE (online on every session, offline as its will, one
timestamp per service run as Sparkplug 3.0 asks), subscribes to `spBv1.0/#` on a persistent
session (the broker queues what arrives while it reconnects), decodes with `HostDecoder`
(bdSeq, seq gaps and duplicates, aliases) and ingests every DATA message into `TelemetryDb`
exactly once, deduplicating by the store message id the edge carries in the payload uuid.
A sequence gap or an unknown edge node or alias triggers a (rate-limited) rebirth request.

Twins: desired documents are set here, persisted, and pushed as NCMD `Twin/Desired`; the edge
reports `Twin/Reported` in NDATA/NBIRTH. Deployments push `Deploy/Request` + `Deploy/Payload`
and collect `Deploy/Result` (see `testbed.cloud.protocol`).

Bad input (malformed payloads, unknown aliases, oversize messages) is counted by reason and
logged; it never stops the ingest loop.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from drivers.errors import DriverConfigError, DriverError, SecurityError
from drivers.mqtt import (
    ClientState,
    MqttClient,
    MqttClientConfig,
    ReceivedMessage,
    Subscription,
    WillConfig,
)
from drivers.mqtt.sparkplug import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DataType,
    HostDecoder,
    HostMessage,
    MessageType,
    Metric,
    MetricValue,
    UnknownAliasError,
    command_message,
    encode_host_state,
    parse_topic,
    rebirth_request,
    state_topic,
)
from drivers.mqtt.sparkplug import OutgoingMessage as SparkplugMessage
from testbed.cloud.protocol import (
    DEPLOY_PAYLOAD,
    DEPLOY_REQUEST,
    DEPLOY_RESULT,
    TWIN_DESIRED,
    TWIN_REPORTED,
    DeployKind,
    DeployRequest,
    DeployResult,
    TwinDocument,
    sha256_hex,
)
from testbed.cloud.telemetry import (
    CloudStoreError,
    IngestOutcome,
    IngestRecord,
    IngestValue,
    Sample,
    TelemetryDb,
)
from testbed.errors import ConfigError, TestbedError

__all__ = ["CloudConfig", "CloudService", "CloudState", "CloudStatistics", "Twin"]

_log = structlog.get_logger(__name__)


class CloudConfig(BaseModel):
    """Broker, identity and database of the cloud service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mqtt: MqttClientConfig
    """`will` must be unset (the service sets its STATE offline will); an empty client_id
    becomes `sparkplug-host-{host_id}` and the session is made persistent."""
    host_id: str = Field(default="testbed-cloud", pattern=r"^[^/+#]+$")
    db_path: Path
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)
    inbox_capacity: int = Field(default=200_000, ge=1)
    """Messages buffered between the MQTT client and the ingest loop (overflow is counted)."""
    ingest_batch: int = Field(default=2000, ge=1)
    rebirth_interval_s: float = Field(default=2.0, ge=0)
    """At most one rebirth request per edge node in this interval."""
    network_timeout_s: float = Field(default=10.0, gt=0)


class CloudState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class CloudStatistics:
    state: CloudState
    connected: bool
    received: int
    messages_ingested: int
    duplicates: int
    values_ingested: int
    births: int
    deaths: int
    gaps: int
    missing_messages: int
    seq_duplicates: int
    rebirths_requested: int
    inbox_dropped: int
    rejected: tuple[tuple[str, int], ...]
    """Messages refused by reason (malformed, oversize, unknown_alias, ...)."""


@dataclass(frozen=True, slots=True)
class Twin:
    """A device twin: desired vs reported properties and what still differs."""

    desired: TwinDocument
    reported: TwinDocument

    @property
    def delta(self) -> dict[str, JsonValue]:
        """Desired properties the edge has not reported with the same value."""
        reported = self.reported.properties
        desired = self.desired.properties
        return {k: v for k, v in desired.items() if k not in reported or reported[k] != v}


class CloudService:
    """The primary host: ingest, gap/duplicate detection, twins, commands, deployments."""

    def __init__(self, config: CloudConfig) -> None:
        if config.mqtt.will is not None:
            raise ConfigError("cloud mqtt.will must be unset: the service sets its STATE will")
        self._config = config
        self._db = TelemetryDb(config.db_path)
        self._decoder = HostDecoder(max_payload_bytes=config.max_payload_bytes)
        self._state = CloudState.NEW
        self._timestamp_ms = time.time_ns() // 1_000_000
        self._client: MqttClient | None = None
        self._subscription: Subscription | None = None
        self._counts: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._last_rebirth: dict[tuple[str, str], float] = {}
        self._twins: dict[tuple[str, str], Twin] = {}
        self._results: dict[str, DeployResult] = {}
        self._changed = asyncio.Event()
        self._task_group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not CloudState.NEW:
            raise RuntimeError(f"CloudService is one-shot; state is {self._state.value}")
        config = self._config
        will = WillConfig(
            topic=state_topic(config.host_id),
            payload=encode_host_state(False, self._timestamp_ms),
            qos=1,
            retain=True,
        )
        mqtt = config.mqtt.model_copy(
            update={
                "will": will,
                "client_id": config.mqtt.client_id or f"sparkplug-host-{config.host_id}",
                "clean_session": False,
            }
        )
        await self._db.__aenter__()
        client = self._client = MqttClient(mqtt)
        client.add_state_listener(lambda _state: self._signal())
        try:
            await client.__aenter__()
            self._subscription = await client.subscribe(
                "spBv1.0/#", qos=1, capacity=config.inbox_capacity, overflow="drop_newest"
            )
            self._task_group = asyncio.TaskGroup()
            await self._task_group.__aenter__()
        except BaseException:
            await client.aclose()
            await self._db.aclose()
            raise
        self._state = CloudState.RUNNING
        self._tasks = [
            self._task_group.create_task(self._announce(client), name="cloud-state"),
            self._task_group.create_task(self._ingest(self._subscription), name="cloud-ingest"),
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
        """Publish STATE offline, stop ingest, close client and database. Idempotent."""
        if self._state in (CloudState.CLOSING, CloudState.CLOSED):
            return
        if self._state is CloudState.NEW:
            self._state = CloudState.CLOSED
            return
        self._state = CloudState.CLOSING
        try:
            client = self._client
            if client is not None and client.is_connected:
                try:
                    await self._publish_state(client, online=False)
                except (DriverError, TimeoutError) as exc:
                    _log.warning("cloud_state_offline_not_sent", error=str(exc))
            for task in self._tasks:
                task.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            if self._client is not None:
                await self._client.aclose()
            await self._db.aclose()
            self._state = CloudState.CLOSED
            self._signal()
            _log.info("cloud_service_closed", host_id=self._config.host_id)

    @property
    def state(self) -> CloudState:
        return self._state

    @property
    def db(self) -> TelemetryDb:
        """The telemetry database (query, streams, export)."""
        return self._db

    @property
    def host_id(self) -> str:
        return self._config.host_id

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until connected and STATE online was published once.

        Raises `ConfigError` when the broker refused the credentials or certificate (the
        client gave up: retrying cannot fix it) and TimeoutError after `timeout_s`.
        """
        client = self._client
        async with asyncio.timeout(timeout_s):
            while self._counts["state_published"] == 0:
                if client is not None and client.state is ClientState.FAILED:
                    try:
                        await client.wait_connected(0)
                    except (SecurityError, DriverConfigError) as exc:
                        raise ConfigError(
                            f"cloud: broker {self._config.mqtt.host}:{self._config.mqtt.port}"
                            f" refused the connection: {exc}"
                        ) from exc
                await self._wait_change()

    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_change(self) -> None:
        if self._state is not CloudState.RUNNING:
            raise TestbedError(f"cloud service is {self._state.value}")
        changed = self._changed
        await changed.wait()

    async def wait_until(
        self, predicate: Callable[[CloudStatistics], bool], timeout_s: float
    ) -> CloudStatistics:
        """Wait until `predicate(statistics())` holds; TimeoutError after `timeout_s`."""
        async with asyncio.timeout(timeout_s):
            while not predicate(stats := self.statistics()):
                await self._wait_change()
        return stats

    # ---- STATE --------------------------------------------------------------------------------

    async def _publish_state(self, client: MqttClient, *, online: bool) -> None:
        payload = encode_host_state(online, self._timestamp_ms)
        async with asyncio.timeout(self._config.network_timeout_s):
            delivery = await client.publish(
                state_topic(self._config.host_id), payload, qos=1, retain=True
            )
            await delivery.acked

    async def _announce(self, client: MqttClient) -> None:
        seen = 0
        while True:
            try:
                await client.wait_session_change(seen)
            except DriverError as exc:  # FAILED (refused) or closed: wait_connected reports it
                _log.error("cloud_connection_given_up", error=str(exc))
                self._signal()
                return
            seen = client.session_id
            try:
                await self._publish_state(client, online=True)
            except (DriverError, TimeoutError) as exc:
                _log.warning("cloud_state_online_not_sent", error=str(exc))
                continue
            self._counts["state_published"] += 1
            _log.info("cloud_host_online", host_id=self._config.host_id, session_id=seen)
            self._signal()

    # ---- ingest -------------------------------------------------------------------------------

    async def _ingest(self, subscription: Subscription) -> None:
        while True:
            batch = [await subscription.get()]
            while len(batch) < self._config.ingest_batch:
                try:
                    batch.append(subscription.get_nowait())
                except asyncio.QueueEmpty:
                    break
            records: list[IngestRecord] = []
            rebirths: set[tuple[str, str]] = set()
            births: list[tuple[str, str]] = []
            for message in batch:
                self._counts["received"] += 1
                record = self._handle(message, rebirths, births)
                if record is not None:
                    records.append(record)
            if records:
                outcome = await self._ingest_with_retry(records)
                self._counts["messages"] += outcome.messages
                self._counts["duplicates"] += outcome.duplicates
                self._counts["values"] += outcome.values
            for group_id, edge_node_id in rebirths:
                await self._maybe_rebirth(group_id, edge_node_id)
            for group_id, edge_node_id in births:
                await self._resend_desired_if_behind(group_id, edge_node_id)
            self._signal()

    async def _ingest_with_retry(self, records: list[IngestRecord]) -> IngestOutcome:
        # the broker already has our PUBACKs: a failed write is retried, never dropped
        failures = 0
        while True:
            try:
                return await self._db.ingest(records)
            except CloudStoreError as exc:
                failures += 1
                self._counts["store_failures"] += 1
                if failures == 1:
                    _log.error("cloud_ingest_failed", error=str(exc), messages=len(records))
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))

    def _handle(
        self,
        message: ReceivedMessage,
        rebirths: set[tuple[str, str]],
        births: list[tuple[str, str]],
    ) -> IngestRecord | None:
        try:
            decoded = self._decoder.decode(message.topic, message.payload)
        except UnknownAliasError as exc:
            self._reject("unknown_alias", message.topic, exc)
            topic = parse_topic(message.topic)
            rebirths.add((topic.group_id, topic.edge_node_id))
            return None
        except DriverError as exc:
            self._reject(str(getattr(exc, "reason", type(exc).__name__)), message.topic, exc)
            return None
        topic = decoded.topic
        verb = topic.message_type
        if verb is MessageType.STATE:
            return None
        node = (topic.group_id, topic.edge_node_id)
        if decoded.rebirth_needed:
            rebirths.add(node)
        if verb is MessageType.NBIRTH:
            self._counts["births"] += 1
            births.append(node)
            self._take_control_metrics(node, decoded)
            return None
        if verb in (MessageType.NDEATH, MessageType.DDEATH):
            self._counts["deaths"] += 1
            return None
        if verb not in (MessageType.NDATA, MessageType.DDATA) or decoded.payload is None:
            return None
        self._take_control_metrics(node, decoded)
        payload = decoded.payload
        stamp = payload.timestamp_ms or 0
        values = tuple(
            IngestValue(
                metric=m.name or f"alias {m.alias}",
                datatype=m.datatype,
                value=m.value,
                timestamp_ms=m.timestamp_ms if m.timestamp_ms is not None else stamp,
                is_historical=m.is_historical,
            )
            for m in payload.metrics
        )
        return IngestRecord(
            group_id=topic.group_id,
            edge_node_id=topic.edge_node_id,
            device_id=topic.device_id,
            message_id=payload.message_id,
            values=values,
            received_ns=time.time_ns(),
        )

    def _reject(self, reason: str, topic: str, exc: Exception) -> None:
        self._rejected[reason] += 1
        _log.warning("cloud_message_rejected", topic=topic, reason=reason, error=str(exc))

    def _take_control_metrics(self, node: tuple[str, str], decoded: HostMessage) -> None:
        if decoded.payload is None or decoded.topic.device_id is not None:
            return
        for metric in decoded.payload.metrics:
            if not isinstance(metric.value, str):
                continue
            try:
                if metric.name == TWIN_REPORTED:
                    reported = TwinDocument.model_validate_json(metric.value)
                    twin = self._twins.get(node, Twin(TwinDocument(), TwinDocument()))
                    self._twins[node] = Twin(twin.desired, reported)
                elif metric.name == DEPLOY_RESULT:
                    result = DeployResult.model_validate_json(metric.value)
                    self._results[result.request_id] = result
            except ValidationError as exc:
                self._reject("bad_control_metric", str(decoded.topic), exc)

    async def _maybe_rebirth(self, group_id: str, edge_node_id: str) -> None:
        now = time.monotonic()
        last = self._last_rebirth.get((group_id, edge_node_id))
        if last is not None and now - last < self._config.rebirth_interval_s:
            return
        self._last_rebirth[(group_id, edge_node_id)] = now
        try:
            await self.request_rebirth(group_id, edge_node_id)
        except (DriverError, TestbedError, TimeoutError) as exc:
            _log.warning("cloud_rebirth_not_sent", edge_node_id=edge_node_id, error=str(exc))

    # ---- commands -----------------------------------------------------------------------------

    async def _send(self, message: SparkplugMessage) -> None:
        client = self._client
        if client is None or self._state is not CloudState.RUNNING:
            raise TestbedError(f"cloud service is {self._state.value}")
        async with asyncio.timeout(self._config.network_timeout_s):
            await client.publish(message.topic, message.payload, message.qos, message.retain)

    async def request_rebirth(self, group_id: str, edge_node_id: str) -> None:
        """NCMD `Node Control/Rebirth` = true."""
        self._counts["rebirths"] += 1
        _log.info("cloud_rebirth_requested", group_id=group_id, edge_node_id=edge_node_id)
        await self._send(rebirth_request(group_id, edge_node_id, _now_ms()))

    async def send_command(
        self,
        group_id: str,
        edge_node_id: str,
        values: Mapping[str, tuple[DataType, MetricValue]],
        device_id: str | None = None,
    ) -> None:
        """Write metrics on an edge node (NCMD) or one of its devices (DCMD)."""
        stamp = _now_ms()
        metrics = tuple(
            Metric(name, datatype, value, timestamp_ms=stamp)
            for name, (datatype, value) in values.items()
        )
        await self._send(command_message(group_id, edge_node_id, metrics, stamp, device_id))

    # ---- twins --------------------------------------------------------------------------------

    async def twin(self, group_id: str, edge_node_id: str) -> Twin:
        """Desired and reported properties of an edge node (persisted desired survives restarts)."""
        node = (group_id, edge_node_id)
        if node not in self._twins:
            stored = await self._db.twin(group_id, edge_node_id)
            # the read awaited: a birth or set_desired may have filled the twin meanwhile,
            # and the in-memory twin is newer than anything persisted
            if stored is not None and node not in self._twins:
                self._twins[node] = Twin(
                    TwinDocument.model_validate_json(stored[0]),
                    TwinDocument.model_validate_json(stored[1]),
                )
        twin = self._twins.get(node, Twin(TwinDocument(), TwinDocument()))
        await self._db.save_twin(
            group_id, edge_node_id, twin.desired.model_dump_json(), twin.reported.model_dump_json()
        )
        return twin

    async def set_desired(
        self, group_id: str, edge_node_id: str, properties: Mapping[str, JsonValue]
    ) -> TwinDocument:
        """Merge `properties` into the desired document (new version), persist it, push it."""
        twin = await self.twin(group_id, edge_node_id)
        desired = TwinDocument(
            version=twin.desired.version + 1,
            properties={**twin.desired.properties, **properties},
        )
        self._twins[(group_id, edge_node_id)] = Twin(desired, twin.reported)
        await self._db.save_twin(
            group_id, edge_node_id, desired.model_dump_json(), twin.reported.model_dump_json()
        )
        await self._push_desired(group_id, edge_node_id, desired)
        return desired

    async def _push_desired(self, group_id: str, edge_node_id: str, desired: TwinDocument) -> None:
        await self.send_command(
            group_id,
            edge_node_id,
            {TWIN_DESIRED: (DataType.STRING, desired.model_dump_json())},
        )

    async def _resend_desired_if_behind(self, group_id: str, edge_node_id: str) -> None:
        twin = await self.twin(group_id, edge_node_id)
        if twin.desired.version > twin.reported.version:
            try:
                await self._push_desired(group_id, edge_node_id, twin.desired)
            except (DriverError, TestbedError, TimeoutError) as exc:
                _log.warning("cloud_desired_not_sent", edge_node_id=edge_node_id, error=str(exc))

    # ---- deployment ---------------------------------------------------------------------------

    async def deploy(
        self,
        group_id: str,
        edge_node_id: str,
        kind: DeployKind,
        name: str,
        version: str,
        data: bytes,
        *,
        sha256: str | None = None,
    ) -> str:
        """Push an application (.fboot) or model file; returns the request id.

        `sha256` defaults to the hash of `data` (pass another to test the edge's check).
        """
        request = DeployRequest(
            request_id=uuid.uuid4().hex,
            kind=kind,
            name=name,
            version=version,
            sha256=sha256 or sha256_hex(data),
        )
        await self.send_command(
            group_id,
            edge_node_id,
            {
                DEPLOY_REQUEST: (DataType.STRING, request.model_dump_json()),
                DEPLOY_PAYLOAD: (DataType.BYTES, data),
            },
        )
        _log.info(
            "cloud_deploy_sent", edge_node_id=edge_node_id, kind=kind, name=name, version=version
        )
        return request.request_id

    async def rollback(self, group_id: str, edge_node_id: str, kind: DeployKind, name: str) -> str:
        """Ask the edge to go back to the previous version of an application or model."""
        request = DeployRequest(
            request_id=uuid.uuid4().hex,
            kind=kind,
            name=name,
            version="previous",
            sha256=sha256_hex(b""),
            action="rollback",
        )
        await self.send_command(
            group_id,
            edge_node_id,
            {
                DEPLOY_REQUEST: (DataType.STRING, request.model_dump_json()),
                DEPLOY_PAYLOAD: (DataType.BYTES, b""),
            },
        )
        return request.request_id

    async def wait_deploy_result(self, request_id: str, timeout_s: float) -> DeployResult:
        """The edge's `Deploy/Result` for a request (TimeoutError after `timeout_s`)."""
        async with asyncio.timeout(timeout_s):
            while request_id not in self._results:
                await self._wait_change()
        return self._results[request_id]

    # ---- queries ------------------------------------------------------------------------------

    async def query(
        self,
        edge_node_id: str,
        device_id: str | None,
        metric: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        *,
        group_id: str | None = None,
    ) -> list[Sample]:
        """Values of one metric stream in arrival order (see `TelemetryDb.query`)."""
        return await self._db.query(
            edge_node_id, device_id, metric, since_ms, until_ms, group_id=group_id
        )

    def is_online(self, group_id: str, edge_node_id: str) -> bool:
        return self._decoder.is_online(group_id, edge_node_id)

    def statistics(self) -> CloudStatistics:
        c = self._counts
        decoder = self._decoder.statistics()
        subscription = self._subscription
        rejected = Counter(self._rejected)
        for reason, count in decoder.errors:
            if reason not in ("unknown_alias",):
                rejected[reason] = max(rejected[reason], count)
        return CloudStatistics(
            state=self._state,
            connected=self._client is not None and self._client.is_connected,
            received=c["received"],
            messages_ingested=c["messages"],
            duplicates=c["duplicates"],
            values_ingested=c["values"],
            births=c["births"],
            deaths=c["deaths"],
            gaps=decoder.gaps,
            missing_messages=decoder.missing_messages,
            seq_duplicates=decoder.seq_duplicates,
            rebirths_requested=c["rebirths"],
            inbox_dropped=subscription.statistics().dropped if subscription is not None else 0,
            rejected=tuple(sorted(rejected.items())),
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

