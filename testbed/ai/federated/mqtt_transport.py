"""Federated payloads over MQTT: one client per site and one for the aggregator, QoS 1.

Topics: `<prefix>/<round>/<site>` carries a site's upload, `<prefix>/<round>/global` the
aggregated model (prefix `testbed/fl`). The aggregator subscribes to `<prefix>/+/+` and skips
`global`; each site subscribes to `<prefix>/+/global`. A publish counts as sent at its PUBACK.

Surviving a broker restart or a dropped connection: messages are published retained, so a
client that resubscribes after a reconnect gets the current round's messages again; every
client re-publishes the last message it sent whenever it starts a new session (a restarted
broker has lost its retained messages); a publish that meets a lost connection waits for the
next session and tries again (all under the transport's deadline); receivers accept each
topic once. The aggregator clears (empty retained payload) a round's uploads and the previous
global model when it sends a new one, and the last global model when the transport closes;
on opening it clears whatever a run that died left retained under the prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import structlog

from drivers.errors import ConnectionLost, DriverError
from drivers.mqtt import MqttClient, MqttClientConfig, Subscription
from testbed.ai.errors import FederatedError
from testbed.ai.federated.transport import RoundMailbox, TransportStatistics

__all__ = ["GLOBAL_TOPIC_LEVEL", "MqttTransport"]

_log = structlog.get_logger(__name__)

GLOBAL_TOPIC_LEVEL = "global"


class MqttTransport:
    """A `FederatedTransport` over a broker; a one-shot async context manager."""

    def __init__(self, client_config: MqttClientConfig, sites: Sequence[str], *,
                 prefix: str = "testbed/fl", timeout_s: float = 60.0,
                 aggregator: bool = True, local_sites: Sequence[str] | None = None) -> None:
        """`aggregator` and `local_sites` (default: all) are the roles this process plays;
        a site in its own process opens `aggregator=False, local_sites=[site]`."""
        if GLOBAL_TOPIC_LEVEL in sites or any("/" in s or "+" in s or "#" in s for s in sites):
            raise FederatedError(f"site names {list(sites)} must be topic levels other than "
                                 f"{GLOBAL_TOPIC_LEVEL!r}")
        self._config = client_config
        self._sites = tuple(sites)
        self._local_sites = self._sites if local_sites is None else tuple(local_sites)
        if unknown := set(self._local_sites) - set(self._sites):
            raise FederatedError(f"local sites {sorted(unknown)} are not among {list(sites)}")
        self._plays_aggregator = aggregator
        self._prefix = prefix
        self._timeout_s = timeout_s
        capacity = 2 * max(1, len(sites))
        self._aggregator_box = RoundMailbox("aggregator", capacity, timeout_s)
        self._site_boxes = {s: RoundMailbox(f"site {s}", capacity, timeout_s) for s in sites}
        self._stack: AsyncExitStack | None = None
        self._aggregator: MqttClient | None = None
        self._clients: dict[str, MqttClient] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._updates_sent = 0
        self._globals_sent = 0
        self._received = 0
        self._bytes_sent = 0
        self._stray = 0
        self._duplicates = 0
        self._republished = 0
        self._retries = 0
        self._seen: set[tuple[str, str]] = set()
        """(receiving role, topic) pairs already accepted."""
        self._last_sent: dict[str, tuple[str, bytes]] = {}
        """Per client role (site name, "" for the aggregator): the last topic and payload."""
        self._closed = False

    @property
    def kind(self) -> str:
        return "mqtt"

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._closed:
            raise RuntimeError("MqttTransport is one-shot")
        stack = self._stack = AsyncExitStack()
        try:
            if self._plays_aggregator:
                self._aggregator = await stack.enter_async_context(MqttClient(self._config))
            for site in self._local_sites:
                self._clients[site] = await stack.enter_async_context(MqttClient(self._config))
            for client in (*self._roles().values(),):
                await client.wait_connected()
            capacity = 4 * max(1, len(self._sites))
            updates = None
            if self._aggregator is not None:
                await self._purge_stale(self._aggregator)
                updates = await self._aggregator.subscribe(f"{self._prefix}/+/+", qos=1,
                                                           capacity=capacity,
                                                           overflow="drop_newest")
            inboxes = {site: await client.subscribe(
                f"{self._prefix}/+/{GLOBAL_TOPIC_LEVEL}", qos=1, capacity=capacity,
                overflow="drop_newest") for site, client in self._clients.items()}
            # readers and re-publishers are cancelled on exit, before their clients close
            group = self._task_group = await stack.enter_async_context(asyncio.TaskGroup())
            tasks = [] if updates is None else [
                group.create_task(self._read(updates, None), name="fl-aggregator-inbox")]
            tasks += [group.create_task(self._read(subscription, site),
                                        name=f"fl-site-inbox-{site}")
                      for site, subscription in inboxes.items()]
            roles = self._roles()
            tasks += [group.create_task(self._republish_on_reconnect(role, client),
                                        name=f"fl-republish-{role or 'aggregator'}")
                      for role, client in roles.items()]
            stack.callback(self._cancel, tasks)
            stack.push_async_callback(self._clear_last_global)
        except DriverError as exc:
            await stack.aclose()
            raise FederatedError(f"MQTT transport to {self._config.host}:{self._config.port}: "
                                 f"{exc}") from exc
        except BaseException:
            await stack.aclose()
            raise
        return self

    def _roles(self) -> dict[str, MqttClient]:
        """Client per role played here ("" is the aggregator)."""
        roles = {} if self._aggregator is None else {"": self._aggregator}
        return {**roles, **self._clients}

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the readers and close every client (and so its subscriptions). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._stack is not None:
            await self._stack.aclose()

    async def _purge_stale(self, client: MqttClient) -> None:
        """Clear retained messages under the prefix; a sentinel marks the end of the replay."""
        sentinel = f"{self._prefix}/open/sentinel/{client.client_id}"
        inbox = await client.subscribe(f"{self._prefix}/#", qos=1, capacity=10_000)
        stale: list[str] = []
        try:
            await (await client.publish(sentinel, b"", qos=1)).acked
            async with asyncio.timeout(self._timeout_s):
                while (message := await inbox.get()).topic != sentinel:
                    if message.payload and message.retain:
                        stale.append(message.topic)
        except TimeoutError as exc:
            raise FederatedError(f"no replay of retained messages under {self._prefix} within "
                                 f"{self._timeout_s} s") from exc
        finally:
            inbox.close()
        for topic in stale:
            await (await client.publish(topic, b"", qos=1, retain=True)).acked
        if stale:
            _log.warning("federated_stale_messages_cleared", prefix=self._prefix,
                         count=len(stale))

    @staticmethod
    def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()

    async def _read(self, subscription: Subscription, site: str | None) -> None:
        async for message in subscription:
            if not message.payload:
                continue  # a cleared retained message
            key = (site or "", message.topic)
            if key in self._seen:
                self._duplicates += 1
                continue
            self._seen.add(key)
            levels = message.topic[len(self._prefix) + 1:].split("/")
            try:
                round_index = int(levels[0])
            except ValueError:
                self._stray += 1
                continue
            is_global = levels[-1] == GLOBAL_TOPIC_LEVEL
            try:
                if site is None and not is_global:
                    self._aggregator_box.put_nowait(round_index, message.payload)
                elif site is not None and is_global:
                    self._site_boxes[site].put_nowait(round_index, message.payload)
            except FederatedError as exc:
                self._stray += 1
                _log.warning("federated_message_refused", topic=message.topic, error=str(exc))

    async def _publish(self, role: str, topic: str, data: bytes, *,
                       remember: bool = True) -> None:
        client = self._aggregator if role == "" else self._clients.get(role)
        if client is None or (self._closed and remember):
            raise FederatedError("MQTT transport is not open")
        if remember:
            self._last_sent[role] = (topic, data)
        try:
            async with asyncio.timeout(self._timeout_s):
                while True:
                    session = client.session_id
                    try:
                        delivery = await client.publish(topic, data, qos=1, retain=True)
                        await delivery.acked
                        break
                    except ConnectionLost:
                        self._retries += 1
                        await client.wait_session_change(session)
        except TimeoutError as exc:
            raise FederatedError(f"{topic} not acknowledged within {self._timeout_s} s"
                                 ) from exc
        except DriverError as exc:
            raise FederatedError(f"publish {topic}: {exc}") from exc
        self._bytes_sent += len(data)

    async def _republish_on_reconnect(self, role: str, client: MqttClient) -> None:
        while True:
            session = client.session_id
            try:
                await client.wait_session_change(session)
            except DriverError:
                return  # the client failed or closed: nothing left to re-send through it
            last = self._last_sent.get(role)
            if last is None:
                continue
            topic, data = last
            try:
                delivery = await client.publish(topic, data, qos=1, retain=True)
                async with asyncio.timeout(self._timeout_s):
                    await delivery.acked
            except (DriverError, TimeoutError) as exc:
                _log.warning("federated_republish_failed", topic=topic, error=str(exc))
                continue
            self._republished += 1
            _log.info("federated_message_republished", topic=topic, role=role or "aggregator")

    async def _clear(self, topic: str) -> None:
        await self._publish("", topic, b"", remember=False)

    async def _clear_last_global(self) -> None:
        last = self._last_sent.get("")
        if last is None or self._aggregator is None or not self._aggregator.is_connected:
            return
        try:
            await self._clear(last[0])
        except FederatedError as exc:
            _log.warning("federated_clear_failed", topic=last[0], error=str(exc))

    async def send_update(self, round_index: int, site: str, data: bytes) -> None:
        if site not in self._clients:
            raise FederatedError(f"unknown site {site!r}; known: {list(self._sites)}")
        await self._publish(site, f"{self._prefix}/{round_index}/{site}", data)
        self._updates_sent += 1

    async def next_update(self, round_index: int) -> bytes:
        data = await self._aggregator_box.get(round_index)
        self._received += 1
        return data

    async def send_global(self, round_index: int, data: bytes) -> None:
        """Clear the round's uploads and the previous global model, then send this one."""
        for site in self._sites:
            await self._clear(f"{self._prefix}/{round_index}/{site}")
        if round_index > 0:
            await self._clear(f"{self._prefix}/{round_index - 1}/{GLOBAL_TOPIC_LEVEL}")
        await self._publish("", f"{self._prefix}/{round_index}/{GLOBAL_TOPIC_LEVEL}", data)
        self._globals_sent += 1

    async def next_global(self, site: str, round_index: int) -> bytes:
        box = self._site_boxes.get(site)
        if box is None:
            raise FederatedError(f"unknown site {site!r}; known: {list(self._sites)}")
        data = await box.get(round_index)
        self._received += 1
        return data

    def statistics(self) -> TransportStatistics:
        rejected = (self._stray + self._aggregator_box.rejected
                    + sum(b.rejected for b in self._site_boxes.values()))
        return TransportStatistics(self.kind, self._updates_sent, self._globals_sent,
                                   self._received, self._bytes_sent, rejected,
                                   duplicates=self._duplicates, republished=self._republished,
                                   retries=self._retries)
