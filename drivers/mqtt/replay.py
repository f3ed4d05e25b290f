"""Building blocks of ordered store-and-forward replay, shared by the plain publisher
(`forwarder.StoreForwardPublisher`) and the Sparkplug edge link (`edge_link.EdgeLink`)."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from drivers.mqtt.store import MessageStore, StoredMessage

__all__ = ["ReplayStream", "TokenBucket"]


@dataclass(slots=True)
class ReplayStream:
    """One stream's replay position: what was fetched from the store and what is buffered."""

    name: str
    cursor: int = 0
    """Highest id already fetched into (or sent from) the buffer."""
    buffer: collections.deque[StoredMessage] = field(default_factory=collections.deque)
    in_db: bool = True
    """The store may hold messages of this stream past `cursor`."""
    appends_seen: int = 0

    async def refill(self, store: MessageStore, batch: int) -> None:
        """Fetch the stream's next stored messages after `cursor` into the buffer.

        The stream counts as drained from the store only if the fetch came back short
        and nothing was appended meanwhile (`appends_seen` unchanged).
        """
        seen = self.appends_seen
        rows = await store.fetch(self.name, self.cursor, batch)
        fresh = [row for row in rows if row.id > self.cursor]
        self.buffer.extend(fresh)
        if fresh:
            self.cursor = fresh[-1].id
        if len(rows) < batch and self.appends_seen == seen:
            self.in_db = False


class TokenBucket:
    """Rate limit for historical replay, so live streams keep flowing."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_to_next(self) -> float:
        return max(0.001, (1.0 - self._tokens) / self._rate)
