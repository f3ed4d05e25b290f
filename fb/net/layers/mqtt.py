"""`mqtt[tcp://host:port, clientID, topic]` under `fbdk[]` or `raw[]`, on `drivers.mqtt.MqttClient`.

INIT+ starts a supervised client in a task the stack owns; INITO follows once it is
connected (and, for receivers, subscribed), or fails with `NO_SOCKET` when the first
connect attempt fails or passes its deadline. REQ/RSP put the encoded message into
a bounded outbox (full: `SEND_FAILED`, counted) that the session task publishes at
QoS 0, as FORTE's Paho layer does; a publish while the broker is away fails that
message (`SEND_FAILED` via `fail`) and the client reconnects on its own. Received
payloads are decoded in the session task and delivered; undecodable ones are
`fail`ed and counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog

from drivers.errors import ConnectionLost, DriverError, DriverTimeout
from drivers.mqtt import (
    ClientState,
    MqttClient,
    MqttClientConfig,
    ReconnectConfig,
    Subscription,
)
from fb.net.codec import PayloadCodec, PayloadError
from fb.net.layers.base import (
    CommLayer,
    ComStatus,
    DataPoints,
    LayerContext,
    LayerOutcome,
    outcome,
)

__all__ = ["MqttLayer", "MqttParams", "create_mqtt_layer", "parse_mqtt_params"]

log = structlog.get_logger(__name__)

OUTBOX_CAPACITY = 1000
RECONNECT_MAX_DELAY_S = 5.0
"""Longest wait between reconnect attempts after the broker went away."""


@dataclass(frozen=True, slots=True)
class MqttParams:
    """The parts of an `mqtt[...]` layer's parameters."""

    host: str
    port: int
    client_id: str
    topic: str


class MqttParamsError(ValueError):
    """`mqtt[...]` parameters that cannot be read."""


def parse_mqtt_params(params: str) -> MqttParams:
    """`tcp://host:port, clientID, topic` (spaces around commas ignored)."""
    parts = [p.strip() for p in params.split(",")]
    if len(parts) != 3 or not all(parts):
        raise MqttParamsError(
            f"mqtt[{params}]: expected 'tcp://host:port, clientID, topic'")
    url, client_id, topic = parts
    split = urlsplit(url)
    if split.scheme != "tcp":
        raise MqttParamsError(f"mqtt[{params}]: only tcp:// brokers are supported, got {url!r}")
    try:
        port = split.port or 1883
    except ValueError as exc:
        raise MqttParamsError(f"mqtt[{params}]: bad port in {url!r}") from exc
    if not split.hostname:
        raise MqttParamsError(f"mqtt[{params}]: no host in {url!r}")
    return MqttParams(split.hostname, port, client_id, topic)


class MqttLayer:
    """One MQTT client per comm FB, owned by the stack's task set."""

    def __init__(self, params: MqttParams, codec: PayloadCodec, ctx: LayerContext,
                 connect_timeout_s: float = 5.0) -> None:
        self._params = params
        self._codec = codec
        self._ctx = ctx
        self._timeout_s = connect_timeout_s
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(OUTBOX_CAPACITY)
        self._client: MqttClient | None = None
        self._closed = False
        self.outbox_overflows = 0
        self.malformed = 0

    def open(self) -> LayerOutcome | None:
        try:
            self._ctx.spawn(self._session(), "mqtt-session")
        except RuntimeError as exc:
            return outcome(ComStatus.NO_SOCKET, str(exc))
        return None

    async def _session(self) -> None:
        p = self._params
        config = MqttClientConfig(host=p.host, port=p.port, client_id=p.client_id,
                                  connect_timeout_s=self._timeout_s,
                                  reconnect=ReconnectConfig(max_delay_s=RECONNECT_MAX_DELAY_S))
        announced = False
        try:
            async with MqttClient(config) as client:
                await self._first_attempt(client)
                subscription = None
                if self._ctx.role.receives:
                    subscription = await client.subscribe(p.topic, qos=0)
                self._client = client
                self._ctx.opened(outcome(ComStatus.OK))
                announced = True
                async with asyncio.TaskGroup() as tg:
                    if subscription is not None:
                        tg.create_task(self._receive(subscription), name="mqtt-receive")
                    if self._ctx.role.sends:
                        tg.create_task(self._publish(client), name="mqtt-publish")
        except DriverError as exc:
            if not announced:
                self._ctx.opened(outcome(ComStatus.NO_SOCKET, str(exc)))
            else:
                self._ctx.lost(outcome(ComStatus.TERMINATED, str(exc)))
        finally:
            self._client = None

    async def _first_attempt(self, client: MqttClient) -> None:
        """Wait for the first connect attempt to end; a failed one fails INIT, as in FORTE.

        Later losses are the client's business (it reconnects with backoff).
        """
        settled = asyncio.Event()

        def watch(state: ClientState) -> None:
            if state in (ClientState.CONNECTED, ClientState.DISCONNECTED, ClientState.FAILED):
                settled.set()

        client.add_state_listener(watch)
        try:
            async with asyncio.timeout(self._timeout_s):
                await settled.wait()
        except TimeoutError as exc:
            raise DriverTimeout(f"no answer from broker {self._params.host}:"
                                f"{self._params.port} within {self._timeout_s} s") from exc
        if not client.is_connected:
            raise ConnectionLost(f"cannot connect to broker {self._params.host}:"
                                 f"{self._params.port}")

    async def _receive(self, subscription: Subscription) -> None:
        async for message in subscription:
            try:
                values = self._codec.decode(message.payload)
            except PayloadError as exc:
                self.malformed += 1
                self._ctx.fail(exc.result)
                continue
            self._ctx.deliver(values)

    async def _publish(self, client: MqttClient) -> None:
        while True:
            payload = await self._outbox.get()
            try:
                await client.publish(self._params.topic, payload, qos=0)
            except DriverError as exc:
                self._ctx.fail(outcome(ComStatus.SEND_FAILED, str(exc)))

    def send(self, points: DataPoints) -> LayerOutcome:
        client = self._client
        if self._closed or client is None:
            return outcome(ComStatus.NO_SOCKET, "not connected to the broker")
        if not client.is_connected:
            return outcome(ComStatus.SEND_FAILED, "broker connection lost; reconnecting")
        try:
            payload = self._codec.encode(points)
        except PayloadError as exc:
            return exc.result
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.outbox_overflows += 1
            return outcome(ComStatus.SEND_FAILED,
                           f"outbox full ({OUTBOX_CAPACITY}); {self.outbox_overflows} dropped")
        return outcome(ComStatus.OK)

    @property
    def client(self) -> MqttClient | None:
        """The running client once INIT succeeded (diagnostics and tests)."""
        return self._client

    def close(self) -> None:
        self._closed = True  # the owning task set cancels the session task


def create_mqtt_layer(params: str, codec: PayloadCodec, ctx: LayerContext) -> CommLayer:
    from fb.net.layers.encoded import InvalidLayer

    try:
        parsed = parse_mqtt_params(params)
    except MqttParamsError as exc:
        return InvalidLayer(outcome(ComStatus.INVALID_ID, str(exc)))
    return MqttLayer(parsed, codec, ctx)
