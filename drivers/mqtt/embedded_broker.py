"""`EmbeddedBroker`: amqtt running in this process, so `testbed run` needs nothing installed."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import structlog
from amqtt.broker import Broker
from amqtt.errors import AMQTTError
from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import DriverError, DriverTimeout

__all__ = ["BrokerState", "EmbeddedBroker", "EmbeddedBrokerConfig"]

_log = structlog.get_logger(__name__)


class BrokerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"


class EmbeddedBrokerConfig(BaseModel):
    """Listener of the in-process broker (MQTT 3.1.1, anonymous, plain TCP)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port; read it back from `EmbeddedBroker.port`."""
    start_timeout_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0)
    settle_timeout_s: float = Field(default=1.0, ge=0)
    """On close, how long messages the broker already acknowledged (PUBACK to their
    publisher) may take to reach their connected subscribers before it stops; amqtt would
    drop them (a graceful stop, as mosquitto's with persistence, loses none)."""
    quiet: bool = True
    """Keep amqtt's per-connection INFO lines out of the log (warnings still pass)."""


class _SnapshotIterDict(dict[str, Any]):
    """A dict whose iteration walks a copy, so it may change while a loop awaits."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> Any:
        return list(super().items())

    def keys(self) -> Any:
        return list(super().keys())


class EmbeddedBroker:
    """amqtt 0.12 broker on the running event loop; a one-shot async context manager."""

    def __init__(self, config: EmbeddedBrokerConfig | None = None) -> None:
        self._config = config or EmbeddedBrokerConfig()
        self._state = BrokerState.NEW
        self._broker: Broker | None = None
        self._port = 0

    @property
    def state(self) -> BrokerState:
        return self._state

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def port(self) -> int:
        if self._state is not BrokerState.RUNNING:
            raise DriverError(f"embedded broker is {self._state.value}")
        return self._port

    async def __aenter__(self) -> Self:
        if self._state is not BrokerState.NEW:
            raise RuntimeError(f"EmbeddedBroker is one-shot; state is {self._state.value}")
        config = self._config
        if config.quiet:
            logging.getLogger("amqtt").setLevel(logging.WARNING)
        broker_config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{config.host}:{config.port}"},
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        try:
            self._broker = Broker(broker_config)
            # amqtt 0.12 iterates its subscription table across awaits (retained replay on
            # connect, broadcast): a client subscribing meanwhile raised "dictionary
            # changed size during iteration" and left the connecting client's session dead
            self._broker._subscriptions = _SnapshotIterDict()
            async with asyncio.timeout(config.start_timeout_s):
                await self._broker.start()
        except TimeoutError as exc:
            self._state = BrokerState.CLOSED
            raise DriverTimeout(
                f"embedded broker did not start within {config.start_timeout_s} s"
            ) from exc
        except (AMQTTError, OSError, ValueError) as exc:
            self._state = BrokerState.CLOSED
            raise DriverError(
                f"embedded broker cannot listen on {config.host}:{config.port}: {exc}"
            ) from exc
        # amqtt has no public accessor for the bound address: read it from its listener
        server = self._broker._servers["default"].instance
        self._port = int(server.sockets[0].getsockname()[1])
        self._state = BrokerState.RUNNING
        _log.info("embedded_broker_started", host=config.host, port=self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _settle(self, broker: Broker) -> None:
        """Wait (bounded) until acknowledged messages left the broker for their subscribers.

        A publisher deletes a QoS 1 message from its store on PUBACK, so one still in its
        session's delivery queue (amqtt PUBACKs after queueing it there), in the broadcast
        queue, or sent to a subscriber that has not acknowledged it yet would be lost by
        `shutdown()` (private amqtt 0.12 attributes: the version is pinned).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.settle_timeout_s
        while loop.time() < deadline:
            connected = [session for session, _handler in broker._sessions.values()
                         if session.transitions.is_connected()]
            if broker._broadcast_queue.empty() and not any(
                    session.inflight_out or not session.delivered_message_queue.empty()
                    for session in connected):
                return
            await asyncio.sleep(0.002)
        _log.warning("embedded_broker_unsettled", port=self._port,
                     timeout_s=self._config.settle_timeout_s)

    async def aclose(self) -> None:
        """Disconnect every client and close the listener. Idempotent."""
        if self._state in (BrokerState.CLOSING, BrokerState.CLOSED):
            return
        if self._state is BrokerState.NEW:
            self._state = BrokerState.CLOSED
            return
        self._state = BrokerState.CLOSING
        try:
            if self._broker is not None:
                await self._settle(self._broker)
                async with asyncio.timeout(self._config.stop_timeout_s):
                    await self._broker.shutdown()
        except TimeoutError as exc:
            raise DriverTimeout(
                f"embedded broker did not stop within {self._config.stop_timeout_s} s"
            ) from exc
        finally:
            self._state = BrokerState.CLOSED
            _log.info("embedded_broker_stopped", port=self._port)
