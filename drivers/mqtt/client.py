"""`MqttClient`: one supervised MQTT connection for asyncio code.

A supervisor task (owned by the client's TaskGroup) connects, re-subscribes, keeps the session
alive and reconnects with jittered exponential backoff after any loss. Rejected credentials or
certificates are fatal by default: retrying cannot fix them, so the client moves to FAILED and
`wait_connected()` raises the `SecurityError`. QoS 1/2 publishes share a bounded in-flight window.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from paho.mqtt.client import topic_matches_sub

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    SecurityError,
)
from drivers.mqtt._session import Delivery, PahoSession, retrieve_outcome, submit_connect
from drivers.mqtt.backoff import backoff_delay_s
from drivers.mqtt.config import MqttClientConfig
from drivers.mqtt.subscription import ReceivedMessage, Subscription, SubscriptionOverflow

__all__ = ["ClientState", "Delivery", "MqttClient", "MqttClientStatistics"]

_log = structlog.get_logger(__name__)


class ClientState(enum.Enum):
    """Lifecycle of an `MqttClient` (one-shot: CLOSED is final)."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    """Between attempts, waiting out the backoff."""
    FAILED = "failed"
    """A fatal error (credentials, certificate, configuration) stopped the supervisor."""
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class MqttClientStatistics:
    """Counters since the client was opened."""

    state: ClientState
    connect_attempts: int
    connects: int
    connect_failures: int
    security_failures: int
    disconnects: int
    published: int
    acked: int
    inflight: int
    max_inflight: int
    received: int
    subscriptions: int
    subscription_drops: int
    last_error: str | None


@dataclass(slots=True)
class _Counters:
    connect_attempts: int = 0
    connects: int = 0
    connect_failures: int = 0
    security_failures: int = 0
    disconnects: int = 0
    published: int = 0
    acked: int = 0
    received: int = 0


class _InflightWindow:
    """Counts QoS 1/2 messages in flight; publishers past the limit wait, first come first
    served. A slot taken without waiting costs no coroutine (unlike `asyncio.Semaphore`)."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while being cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the oldest waiter
                return
        self._free += 1


class MqttClient:
    """A supervised MQTT 3.1.1/5 connection (paho-mqtt 2.x driven by the event loop).

    ```python
    async with MqttClient(MqttClientConfig(port=port)) as client:
        await client.wait_connected()
        sub = await client.subscribe("plant/#", qos=1)
        delivery = await client.publish("plant/level", b"1.5", qos=1)
        await delivery.acked
        message = await sub.get()
    ```
    """

    def __init__(self, config: MqttClientConfig) -> None:
        self._config = config
        self._client_id = config.client_id or f"testbed-{uuid.uuid4().hex[:16]}"
        self._state = ClientState.NEW
        self._counters = _Counters()
        self._session: PahoSession | None = None
        self._session_id = 0
        self._wake = asyncio.Event()
        self._fatal: DriverError | None = None
        self._last_error: str | None = None
        self._window = _InflightWindow(config.max_inflight)
        self._subscriptions: list[Subscription] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._state_listeners: list[Callable[[ClientState], None]] = []
        self._pending_connect: concurrent.futures.Future[None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not ClientState.NEW:
            raise RuntimeError(f"MqttClient is one-shot; state is {self._state.value}")
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"mqtt-connect-{self._client_id}"
        )
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._set_state(ClientState.CONNECTING)
        self._supervisor = self._task_group.create_task(
            self._supervise(), name=f"mqtt-supervisor-{self._client_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect politely (no will), stop the supervisor, end subscriptions. Idempotent."""
        if self._state in (ClientState.CLOSING, ClientState.CLOSED):
            return
        if self._state is ClientState.NEW:
            self._set_state(ClientState.CLOSED)
            return
        self._set_state(ClientState.CLOSING)
        try:
            if self._supervisor is not None:
                self._supervisor.cancel()
            if self._task_group is not None:
                await self._task_group.__aexit__(None, None, None)
        finally:
            session = self._session
            if session is not None:
                session.abort()
            self._session = None
            for subscription in list(self._subscriptions):
                subscription.close()
            pending = self._pending_connect
            if pending is not None and not pending.done():
                # a connect still running in the worker ends within connect_timeout_s
                waiter = asyncio.wrap_future(pending)
                waiter.add_done_callback(retrieve_outcome)
                await asyncio.wait([waiter], timeout=self._config.connect_timeout_s + 1.0)
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._set_state(ClientState.CLOSED)
            _log.info("mqtt_client_closed", client_id=self._client_id)

    # ---- state --------------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def config(self) -> MqttClientConfig:
        return self._config

    @property
    def is_connected(self) -> bool:
        return self._state is ClientState.CONNECTED

    @property
    def session_id(self) -> int:
        """Counts successful connections; changes whenever a new session starts."""
        return self._session_id

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until connected (default deadline: connect_timeout_s).

        Raises the fatal error if the client FAILED, `ConnectionLost` once closed, and
        `DriverTimeout` (naming the last connection error) when the deadline passes.
        """
        deadline = self._config.connect_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(deadline):
                while not self.is_connected:
                    self._raise_if_finished()
                    await self._wake.wait()
        except TimeoutError as exc:
            raise DriverTimeout(
                f"not connected to {self._config.host}:{self._config.port} within {deadline} s"
                f" (last error: {self._last_error})"
            ) from exc

    async def wait_disconnected(self) -> None:
        """Wait until the current session (if any) has ended; no deadline (a supervisor wait)."""
        while self.is_connected:
            await self._wake.wait()

    async def wait_session_change(self, session_id: int) -> None:
        """Wait until a session other than `session_id` is connected, or the client finishes."""
        while not (self.is_connected and self._session_id != session_id):
            self._raise_if_finished()
            await self._wake.wait()

    def _raise_if_finished(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._state in (ClientState.CLOSING, ClientState.CLOSED):
            raise ConnectionLost("client is closed")

    def add_state_listener(self, listener: Callable[[ClientState], None]) -> None:
        """Call `listener` (on the event loop) at every state change."""
        self._state_listeners.append(listener)

    def _set_state(self, state: ClientState) -> None:
        self._state = state
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()
        for listener in self._state_listeners:
            listener(state)

    # ---- publish and subscribe ----------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        user_properties: Iterable[tuple[str, str]] = (),
    ) -> Delivery:
        """Send one message once there is room in the in-flight window.

        Raises `ConnectionLost` when not connected (publish again after reconnect, or use the
        store-and-forward publisher) and `DriverTimeout` if the window stays full past
        publish_timeout_s. `Delivery.acked` completes at PUBACK, or fails with `ConnectionLost`.
        """
        if qos not in (0, 1, 2):
            raise DriverConfigError(f"qos must be 0, 1 or 2, got {qos}")
        if self._session is None or not self.is_connected:
            raise ConnectionLost(f"not connected to {self._config.host}:{self._config.port}")
        if qos > 0 and not self._window.try_take():
            try:
                async with asyncio.timeout(self._config.publish_timeout_s):
                    await self._window.take()
            except TimeoutError as exc:
                raise DriverTimeout(
                    f"in-flight window ({self._config.max_inflight}) still full after "
                    f"{self._config.publish_timeout_s} s"
                ) from exc
        return self._send(topic, payload, qos, retain, user_properties)

    def publish_nowait(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> Delivery | None:
        """`publish` when the in-flight window has room now, else None (then await `publish`):
        the per-message path of a forwarder, without a coroutine per message."""
        if qos not in (0, 1, 2):
            raise DriverConfigError(f"qos must be 0, 1 or 2, got {qos}")
        if self._session is None or not self.is_connected:
            raise ConnectionLost(f"not connected to {self._config.host}:{self._config.port}")
        if qos > 0 and not self._window.try_take():
            return None
        return self._send(topic, payload, qos, retain, ())

    def _send(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        user_properties: Iterable[tuple[str, str]],
    ) -> Delivery:
        """Hand a message to the session; a QoS 1/2 caller holds a window slot."""
        session = self._session
        try:
            if session is None or not self.is_connected:
                raise ConnectionLost(f"connection to {self._config.host} lost")
            delivery = session.publish(topic, payload, qos, retain, user_properties)
        except BaseException:
            if qos > 0:
                self._window.release()
            raise
        self._counters.published += 1
        return delivery

    def _on_settled(self, acked: bool) -> None:
        # the session calls this once per QoS 1/2 delivery that left its in-flight set
        self._window.release()
        if acked:
            self._counters.acked += 1

    async def subscribe(
        self,
        topic_filter: str,
        qos: int = 1,
        capacity: int = 1000,
        overflow: SubscriptionOverflow = "drop_oldest",
    ) -> Subscription:
        """Receive messages matching `topic_filter` into a bounded queue.

        The subscription is renewed on every reconnect. When connected, this waits for the
        SUBACK (deadline subscribe_timeout_s); otherwise it takes effect at the next connect.
        """
        if self._state in (ClientState.CLOSING, ClientState.CLOSED, ClientState.NEW):
            raise ConnectionLost(f"cannot subscribe: client is {self._state.value}")
        subscription = Subscription(topic_filter, qos, capacity, overflow, self._forget)
        self._subscriptions.append(subscription)
        session = self._session
        if session is not None and self.is_connected:
            await self._await_suback(session, topic_filter, qos)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        still_wanted = any(s.topic_filter == subscription.topic_filter for s in self._subscriptions)
        if self._session is not None and self.is_connected and not still_wanted:
            self._session.unsubscribe(subscription.topic_filter)

    async def _await_suback(self, session: PahoSession, topic_filter: str, qos: int) -> None:
        suback = session.subscribe(topic_filter, qos)
        try:
            async with asyncio.timeout(self._config.subscribe_timeout_s):
                await suback
        except TimeoutError as exc:
            raise DriverTimeout(
                f"no SUBACK for {topic_filter!r} within {self._config.subscribe_timeout_s} s"
            ) from exc

    def _dispatch(self, message: ReceivedMessage) -> None:
        self._counters.received += 1
        for subscription in self._subscriptions:
            topic_filter = subscription.topic_filter
            if topic_filter.startswith("$share/"):
                topic_filter = topic_filter.split("/", 2)[2]
            if topic_matches_sub(topic_filter, message.topic):
                subscription.deliver_nowait(message)

    # ---- supervisor ---------------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            self._set_state(ClientState.CONNECTING)
            self._counters.connect_attempts += 1
            try:
                session = await self._connect_once()
            except (SecurityError, DriverConfigError) as exc:
                self._note_failure(exc)
                if isinstance(exc, SecurityError):
                    self._counters.security_failures += 1
                if isinstance(exc, DriverConfigError) or not self._config.retry_on_security_error:
                    self._fatal = exc
                    self._set_state(ClientState.FAILED)
                    _log.error(
                        "mqtt_connect_failed_fatally", client_id=self._client_id, error=str(exc)
                    )
                    return
            except DriverError as exc:
                self._note_failure(exc)
            else:
                attempt = 0
                await self._run_session(session)
            self._set_state(ClientState.DISCONNECTED)
            delay_s = backoff_delay_s(attempt, self._config.reconnect)
            attempt += 1
            _log.info(
                "mqtt_reconnect_scheduled",
                client_id=self._client_id,
                delay_s=round(delay_s, 3),
                attempt=attempt,
            )
            await asyncio.sleep(delay_s)

    def _note_failure(self, exc: DriverError) -> None:
        self._counters.connect_failures += 1
        self._last_error = str(exc)
        _log.warning("mqtt_connect_failed", client_id=self._client_id, error=str(exc))

    async def _connect_once(self) -> PahoSession:
        assert self._executor is not None
        session = PahoSession(
            self._config, self._client_id, self._dispatch, on_settled=self._on_settled
        )
        pending = self._pending_connect = submit_connect(self._executor, session)
        try:
            await asyncio.wrap_future(pending)
        except BaseException:
            # cancelled or failed: let the worker finish, then close whatever it opened
            pending.add_done_callback(lambda _: session.discard_blocking())
            raise
        try:
            session.adopt()
            await session.wait_connack()
            for subscription in list(self._subscriptions):
                await self._await_suback(session, subscription.topic_filter, subscription.qos)
        except BaseException:
            session.abort()
            raise
        return session

    async def _run_session(self, session: PahoSession) -> None:
        self._session = session
        self._session_id += 1
        self._counters.connects += 1
        self._set_state(ClientState.CONNECTED)
        _log.info(
            "mqtt_connected",
            client_id=self._client_id,
            host=self._config.host,
            port=self._config.port,
            session_id=self._session_id,
        )
        try:
            await session.tick()
        except asyncio.CancelledError:
            await session.disconnect()
            raise
        finally:
            self._session = None
        self._counters.disconnects += 1
        reason = session.end_reason
        self._last_error = str(reason) if reason is not None else None
        _log.warning("mqtt_connection_lost", client_id=self._client_id, error=self._last_error)

    # ---- statistics ---------------------------------------------------------------------------

    def statistics(self) -> MqttClientStatistics:
        counters = self._counters
        session = self._session
        return MqttClientStatistics(
            state=self._state,
            connect_attempts=counters.connect_attempts,
            connects=counters.connects,
            connect_failures=counters.connect_failures,
            security_failures=counters.security_failures,
            disconnects=counters.disconnects,
            published=counters.published,
            acked=counters.acked,
            inflight=session.inflight if session is not None else 0,
            max_inflight=self._config.max_inflight,
            received=counters.received,
            subscriptions=len(self._subscriptions),
            subscription_drops=sum(s.statistics().dropped for s in self._subscriptions),
            last_error=self._last_error,
        )
