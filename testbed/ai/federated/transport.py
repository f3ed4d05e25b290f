"""How payload bytes move between sites and the aggregator: the contract and the in-process kind.

A transport carries opaque bytes addressed by round and site; it never looks inside them.
Updates go from sites to the aggregator, global models from the aggregator to every site.
Messages for a later round than the one awaited are kept until asked for (bounded), so a fast
site cannot confuse a slow aggregator.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from testbed.ai.errors import FederatedError

__all__ = ["FederatedTransport", "InProcessTransport", "RoundMailbox", "TransportStatistics"]


@dataclass(frozen=True, slots=True)
class TransportStatistics:
    """Messages and payload bytes moved since the transport opened."""

    kind: str
    updates_sent: int
    globals_sent: int
    messages_received: int
    bytes_sent: int
    """Payload bytes handed to the medium (a broker fans a global model out by itself)."""
    rejected: int
    """Messages refused: full mailbox, unknown site, or unparsable topic."""
    duplicates: int = 0
    """Messages on a topic already accepted (re-sent after a reconnect), skipped."""
    republished: int = 0
    """Messages sent again because their sender started a new session."""
    retries: int = 0
    """Publishes that met a lost connection and were tried again on the next session."""


class FederatedTransport(Protocol):
    """Site-to-aggregator and aggregator-to-site delivery of payload bytes."""

    @property
    def kind(self) -> str:
        """A short name for reports (`in-process`, `mqtt`)."""
        ...

    async def send_update(self, round_index: int, site: str, data: bytes) -> None:
        """A site's payload for `round_index`, to the aggregator."""
        ...

    async def next_update(self, round_index: int) -> bytes:
        """The aggregator's next site payload of `round_index` (raises on the deadline)."""
        ...

    async def send_global(self, round_index: int, data: bytes) -> None:
        """The aggregator's model of `round_index`, to every site."""
        ...

    async def next_global(self, site: str, round_index: int) -> bytes:
        """`site`'s copy of the global model of `round_index` (raises on the deadline)."""
        ...

    def statistics(self) -> TransportStatistics:
        ...


class RoundMailbox:
    """Messages per round, bounded; `get` waits for one of a round under a deadline."""

    def __init__(self, name: str, capacity: int, timeout_s: float) -> None:
        self._name = name
        self._capacity = capacity
        self._timeout_s = timeout_s
        self._by_round: defaultdict[int, deque[bytes]] = defaultdict(deque)
        self._count = 0
        self._changed = asyncio.Event()
        self.rejected = 0

    def put_nowait(self, round_index: int, data: bytes) -> None:
        """Keep one message; past the capacity it is refused (counted) with an error."""
        if self._count >= self._capacity:
            self.rejected += 1
            raise FederatedError(f"{self._name}: mailbox full ({self._capacity} messages); "
                                 f"round {round_index} message refused")
        self._by_round[round_index].append(data)
        self._count += 1
        self._changed.set()

    async def get(self, round_index: int) -> bytes:
        try:
            async with asyncio.timeout(self._timeout_s):
                while not self._by_round.get(round_index):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError as exc:
            raise FederatedError(f"{self._name}: nothing for round {round_index} within "
                                 f"{self._timeout_s} s") from exc
        queue = self._by_round[round_index]
        data = queue.popleft()
        if not queue:
            del self._by_round[round_index]
        self._count -= 1
        return data


class InProcessTransport:
    """Mailboxes in this process: the default when no broker is given (bytes still travel)."""

    def __init__(self, sites: Sequence[str], timeout_s: float = 60.0) -> None:
        capacity = 2 * max(1, len(sites))
        self._aggregator = RoundMailbox("aggregator", capacity, timeout_s)
        self._sites = {s: RoundMailbox(f"site {s}", capacity, timeout_s) for s in sites}
        self._updates_sent = 0
        self._globals_sent = 0
        self._received = 0
        self._bytes_sent = 0

    @property
    def kind(self) -> str:
        return "in-process"

    async def send_update(self, round_index: int, site: str, data: bytes) -> None:
        self._aggregator.put_nowait(round_index, data)
        self._updates_sent += 1
        self._bytes_sent += len(data)

    async def next_update(self, round_index: int) -> bytes:
        data = await self._aggregator.get(round_index)
        self._received += 1
        return data

    async def send_global(self, round_index: int, data: bytes) -> None:
        for mailbox in self._sites.values():
            mailbox.put_nowait(round_index, data)
            self._bytes_sent += len(data)
        self._globals_sent += 1

    async def next_global(self, site: str, round_index: int) -> bytes:
        mailbox = self._sites.get(site)
        if mailbox is None:
            raise FederatedError(f"unknown site {site!r}; known: {sorted(self._sites)}")
        data = await mailbox.get(round_index)
        self._received += 1
        return data

    def statistics(self) -> TransportStatistics:
        rejected = self._aggregator.rejected + sum(m.rejected for m in self._sites.values())
        return TransportStatistics(self.kind, self._updates_sent, self._globals_sent,
                                   self._received, self._bytes_sent, rejected)
