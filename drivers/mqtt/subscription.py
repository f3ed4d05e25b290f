"""A subscription's bounded inbox: async iteration over received messages, counted overflow."""

from __future__ import annotations

import asyncio
import collections
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import structlog

__all__ = [
    "ReceivedMessage",
    "Subscription",
    "SubscriptionOverflow",
    "SubscriptionStatistics",
]

_log = structlog.get_logger(__name__)

SubscriptionOverflow = Literal["drop_oldest", "drop_newest"]


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One application message delivered by the broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SubscriptionStatistics:
    """Counters of one subscription's inbox."""

    topic_filter: str
    queued: int
    capacity: int
    received: int
    dropped: int
    overflow: SubscriptionOverflow


class _End(enum.Enum):
    END = enum.auto()


class Subscription:
    """Messages matching one topic filter, in arrival order, through a bounded queue.

    Iterate with `async for message in subscription`; iteration ends when the subscription or
    its client closes. When the queue is full the configured policy drops a message and counts it.
    """

    def __init__(
        self,
        topic_filter: str,
        qos: int,
        capacity: int,
        overflow: SubscriptionOverflow,
        on_close: Callable[[Subscription], None],
    ) -> None:
        if capacity < 1:
            raise ValueError(f"subscription capacity must be >= 1, got {capacity}")
        self.topic_filter = topic_filter
        self.qos = qos
        self._capacity = capacity
        self._overflow: SubscriptionOverflow = overflow
        self._queue: collections.deque[ReceivedMessage] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close
        self._received = 0
        self._dropped = 0
        self._in_overflow_burst = False

    def deliver_nowait(self, message: ReceivedMessage) -> None:
        """Called by the client (event-loop thread) for every matching message."""
        if self._closed:
            return
        self._received += 1
        if len(self._queue) >= self._capacity:
            self._dropped += 1
            if not self._in_overflow_burst:
                self._in_overflow_burst = True
                _log.warning(
                    "subscription_overflowed",
                    topic_filter=self.topic_filter,
                    policy=self._overflow,
                    capacity=self._capacity,
                )
            if self._overflow == "drop_newest":
                return
            self._queue.popleft()
        else:
            self._in_overflow_burst = False
        self._queue.append(message)
        self._ready.set()

    def get_nowait(self) -> ReceivedMessage:
        """The oldest queued message; raises `asyncio.QueueEmpty` if there is none."""
        if not self._queue:
            raise asyncio.QueueEmpty
        message = self._queue.popleft()
        if not self._queue:
            self._ready.clear()
        return message

    async def get(self) -> ReceivedMessage:
        """Wait for the next message; raises `StopAsyncIteration` once closed and drained."""
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            await self._ready.wait()
        return self.get_nowait()

    def __aiter__(self) -> AsyncIterator[ReceivedMessage]:
        return self

    async def __anext__(self) -> ReceivedMessage:
        return await self.get()

    def close(self) -> None:
        """Stop receiving (idempotent); already queued messages can still be read."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> SubscriptionStatistics:
        return SubscriptionStatistics(
            topic_filter=self.topic_filter,
            queued=len(self._queue),
            capacity=self._capacity,
            received=self._received,
            dropped=self._dropped,
            overflow=self._overflow,
        )
