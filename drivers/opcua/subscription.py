"""Subscriptions: server-side monitored items feeding a bounded, counted queue.

The session creates the OPC UA subscription with asyncua's raw session service and
registers ``_on_publish`` as the publish callback. asyncua awaits that callback
inside its publish loop, so the ``block`` policy is real back-pressure: while the
caller does not drain, no further Publish request is sent and the server keeps (or
discards, per its own queue size) the samples. ``drop_oldest``/``drop_newest``
never wait. Every drop is counted and the first of a burst is logged.

When the connection is lost the session pushes one Bad-quality result per item
(``BadNotConnected``) so the gap is visible, never silently bridged; after the
reconnect the server's initial values of the re-created items follow.
"""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError

from drivers.errors import DriverError
from drivers.opcua._ua import AttributeIds
from drivers.opcua.addressing import NodeAddress
from drivers.opcua.config import OpcUaSubscriptionConfig, OverflowPolicy
from drivers.opcua.errors import error_for_status, status_name
from drivers.opcua.quality import DataValueResult

__all__ = ["OpcUaSubscription", "OpcUaSubscriptionStatistics", "SubscriptionClosed"]

_log = structlog.get_logger(__name__)

_LOST_STATUS = "BadNotConnected"


class SubscriptionClosed(DriverError):
    """The subscription (or its session) was closed and its queue is drained."""


@dataclass(frozen=True, slots=True)
class OpcUaSubscriptionStatistics:
    """Queue and delivery counters of one subscription."""

    capacity: int
    overflow: OverflowPolicy
    queued: int
    received: int
    delivered: int
    dropped_oldest: int
    dropped_newest: int
    blocked_puts: int
    gaps_reported: int
    activations: int


class _State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class _NotificationQueue:
    """A bounded FIFO with the three overflow policies and counters (single consumer)."""

    def __init__(self, capacity: int, policy: OverflowPolicy) -> None:
        self.capacity = capacity
        self.policy = policy
        self._items: collections.deque[DataValueResult] = collections.deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._closed = False
        self._overflowing = False
        self.received = 0
        self.delivered = 0
        self.dropped_oldest = 0
        self.dropped_newest = 0
        self.blocked_puts = 0

    def __len__(self) -> int:
        return len(self._items)

    def _append(self, item: DataValueResult) -> None:
        self._items.append(item)
        self._not_empty.set()
        if len(self._items) >= self.capacity:
            self._not_full.clear()

    def _note_overflow(self, subscription: str) -> None:
        if not self._overflowing:
            self._overflowing = True
            _log.warning(
                "subscription_queue_overflowed",
                subscription=subscription,
                capacity=self.capacity,
                policy=self.policy.value,
            )

    def put_nowait(self, item: DataValueResult, subscription: str, *, drop_oldest: bool) -> None:
        """Add without waiting; a full queue drops the oldest or the new item."""
        self.received += 1
        if self._closed:
            self.dropped_newest += 1
            return
        if len(self._items) < self.capacity:
            self._append(item)
            return
        self._note_overflow(subscription)
        if drop_oldest:
            self._items.popleft()
            self.dropped_oldest += 1
            self._append(item)
        else:
            self.dropped_newest += 1

    async def put(self, item: DataValueResult, subscription: str) -> None:
        """Add per policy; ``block`` waits for room (closing the queue releases the wait)."""
        if self.policy is not OverflowPolicy.BLOCK:
            self.put_nowait(
                item, subscription, drop_oldest=self.policy is OverflowPolicy.DROP_OLDEST
            )
            return
        if len(self._items) >= self.capacity and not self._closed:
            self.blocked_puts += 1
            self._note_overflow(subscription)
            while len(self._items) >= self.capacity and not self._closed:
                await self._not_full.wait()
        self.put_nowait(item, subscription, drop_oldest=False)

    def get_nowait(self) -> DataValueResult | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self.delivered += 1
        if len(self._items) < self.capacity:
            self._not_full.set()
            self._overflowing = False
        if not self._items:
            self._not_empty.clear()
        return item

    async def get(self) -> DataValueResult:
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._closed:
                raise SubscriptionClosed("subscription closed")
            await self._not_empty.wait()

    def close(self) -> None:
        self._closed = True
        self._not_empty.set()
        self._not_full.set()


class OpcUaSubscription:
    """Data-change notifications of some nodes, delivered as ``DataValueResult`` in order.

    Created by ``OpcUaClientSession.subscribe``; survives reconnects (the session
    re-creates it on the new connection). Consume with ``await sub.get()`` or
    ``async for result in sub``; iteration ends when the subscription is closed.
    """

    def __init__(
        self,
        addresses: Sequence[NodeAddress],
        config: OpcUaSubscriptionConfig,
        name: str,
        on_close: Callable[[OpcUaSubscription], None],
    ) -> None:
        self.addresses = tuple(addresses)
        self.config = config
        self.name = name
        self._queue = _NotificationQueue(config.queue_capacity, config.overflow)
        self._on_close = on_close
        self._state = _State.OPEN
        self._subscription_id: int | None = None
        self._client: Client | None = None
        self._gap_open = False
        self._gaps_reported = 0
        self._activations = 0

    # -- consumer side ---------------------------------------------------------------

    async def get(self) -> DataValueResult:
        """The next notification; waits for one. Raises SubscriptionClosed after close."""
        return await self._queue.get()

    def get_nowait(self) -> DataValueResult | None:
        """The next notification if one is queued, else None."""
        return self._queue.get_nowait()

    def __aiter__(self) -> AsyncIterator[DataValueResult]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[DataValueResult]:
        while True:
            try:
                item = await self._queue.get()
            except SubscriptionClosed:
                return
            yield item

    @property
    def closed(self) -> bool:
        """True once closed (queued items can still be read)."""
        return self._state is _State.CLOSED

    def statistics(self) -> OpcUaSubscriptionStatistics:
        """Queue and delivery counters."""
        queue = self._queue
        return OpcUaSubscriptionStatistics(
            capacity=queue.capacity,
            overflow=queue.policy,
            queued=len(queue),
            received=queue.received,
            delivered=queue.delivered,
            dropped_oldest=queue.dropped_oldest,
            dropped_newest=queue.dropped_newest,
            blocked_puts=queue.blocked_puts,
            gaps_reported=self._gaps_reported,
            activations=self._activations,
        )

    async def aclose(self) -> None:
        """Delete the server-side subscription (best effort) and end iteration; idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        client, sub_id = self._client, self._subscription_id
        self._client = None
        self._subscription_id = None
        self._queue.close()
        self._on_close(self)
        if client is not None and sub_id is not None:
            try:
                async with asyncio.timeout(2.0):
                    await client.uaclient.delete_subscriptions([sub_id])
            except (TimeoutError, OSError, UaError) as exc:
                _log.info("subscription_delete_failed", subscription=self.name, error=repr(exc))

    # -- session side ------------------------------------------------------------------

    def _close_from_session(self) -> None:
        self._state = _State.CLOSED
        self._client = None
        self._subscription_id = None
        self._queue.close()

    def _report_gap(self, status: str = _LOST_STATUS) -> None:
        """Queue one Bad result per item, once per outage (never blocks)."""
        self._client = None
        self._subscription_id = None
        if self._gap_open or self._state is _State.CLOSED:
            return
        self._gap_open = True
        self._gaps_reported += 1
        for address in self.addresses:
            self._queue.put_nowait(
                DataValueResult.bad(address, status), self.name, drop_oldest=True
            )

    async def _activate(
        self, client: Client, node_ids: Sequence[ua.NodeId], *, first: bool
    ) -> None:
        """Create the subscription and its monitored items on ``client`` (caller's deadline).

        On the first activation a rejected item raises (the caller asked for a node
        that is not there); on a re-activation it becomes a Bad-quality result.
        """
        cfg = self.config
        keepalive = max(1, int(1000.0 / cfg.publishing_interval_ms))
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = cfg.publishing_interval_ms
        params.RequestedMaxKeepAliveCount = keepalive
        params.RequestedLifetimeCount = keepalive * 30
        params.MaxNotificationsPerPublish = 0
        params.PublishingEnabled = True
        params.Priority = 0
        result = await client.uaclient.create_subscription(params, self._on_publish)
        sub_id = int(result.SubscriptionId)
        self._client = client
        self._subscription_id = sub_id
        sampling = (
            cfg.sampling_interval_ms
            if cfg.sampling_interval_ms is not None
            else cfg.publishing_interval_ms
        )
        items = []
        for handle, node_id in enumerate(node_ids):
            request = ua.MonitoredItemCreateRequest()
            request.ItemToMonitor = ua.ReadValueId()
            request.ItemToMonitor.NodeId = node_id
            request.ItemToMonitor.AttributeId = AttributeIds.Value
            request.MonitoringMode = ua.MonitoringMode.Reporting
            request.RequestedParameters = ua.MonitoringParameters()
            request.RequestedParameters.ClientHandle = handle
            request.RequestedParameters.SamplingInterval = sampling
            request.RequestedParameters.QueueSize = cfg.server_queue_size
            request.RequestedParameters.DiscardOldest = True
            items.append(request)
        create = ua.CreateMonitoredItemsParameters()
        create.SubscriptionId = sub_id
        create.TimestampsToReturn = ua.TimestampsToReturn.Both
        create.ItemsToCreate = items
        results = await client.uaclient.create_monitored_items(create)
        self._gap_open = False
        self._activations += 1
        for address, item_result in zip(self.addresses, results, strict=True):
            code = int(item_result.StatusCode.value)
            if code & 0x80000000 and first:
                raise error_for_status(code, f"subscribe {address}")
            if code & 0x80000000:
                _log.warning(
                    "monitored_item_rejected",
                    subscription=self.name,
                    address=str(address),
                    status=status_name(code),
                )
                await self._queue.put(DataValueResult.bad(address, status_name(code)), self.name)

    async def _on_publish(self, result: ua.PublishResult) -> None:
        """asyncua's publish callback: convert and queue (awaited by its publish loop)."""
        if self._state is _State.CLOSED or result.SubscriptionId != self._subscription_id:
            return
        notification = result.NotificationMessage
        for data in notification.NotificationData or ():
            if isinstance(data, ua.DataChangeNotification):
                for item in data.MonitoredItems:
                    handle = int(item.ClientHandle)
                    if 0 <= handle < len(self.addresses):
                        await self._queue.put(
                            DataValueResult.from_data_value(self.addresses[handle], item.Value),
                            self.name,
                        )
            elif isinstance(data, ua.StatusChangeNotification):
                code = int(data.Status.value) if data.Status is not None else 0
                _log.info(
                    "subscription_status_changed", subscription=self.name, status=status_name(code)
                )
                if code & 0x80000000:
                    self._report_gap(status_name(code) if code else _LOST_STATUS)
