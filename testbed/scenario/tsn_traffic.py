"""Best-effort background traffic for the emulated TSN link: a paced UDP source and a sink.

The source numbers every datagram (first 8 bytes) and remembers when it sent it, the
sink remembers which numbers arrived, so the share of the offered load that got through
a window of time is exact whatever the link did (queue drops, loss, gate closures).
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

__all__ = ["BestEffortStatistics", "BestEffortTraffic"]

log = structlog.get_logger(__name__)

_TICK_S = 0.002
_MAX_BURST = 64
"""Datagrams sent in one tick at most; a stalled loop skips the rest (counted)."""
_HEADER = struct.Struct("!Q")
_UDP_IP_HEADERS = 42
"""Ethernet + IP + UDP header bytes the link model adds to every datagram."""


@dataclass(frozen=True, slots=True)
class BestEffortStatistics:
    """Best-effort datagrams sent during a window and how many of them arrived."""

    offered: int
    delivered: int
    datagram_bytes: int
    window_s: float
    skipped: int

    @property
    def offered_mbps(self) -> float:
        """Offered load on the wire (with the UDP/IP/Ethernet headers)."""
        return self._mbps(self.offered)

    @property
    def delivered_mbps(self) -> float:
        return self._mbps(self.delivered)

    @property
    def retained(self) -> float | None:
        """Delivered / offered in [0, 1]; None when nothing was offered."""
        return self.delivered / self.offered if self.offered else None

    def _mbps(self, count: int) -> float:
        if self.window_s <= 0:
            return 0.0
        return count * (self.datagram_bytes + _UDP_IP_HEADERS) * 8 / self.window_s / 1e6


class _Sink(asyncio.DatagramProtocol):
    def __init__(self, received: set[int]) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if len(data) >= _HEADER.size:
            self.received.add(_HEADER.unpack_from(data)[0])


class BestEffortTraffic:
    """A one-shot async context manager: the sink listens once entered; `start(port)`
    sends `rate_per_s` datagrams of `datagram_bytes` to `port` until `stop()`."""

    def __init__(self, rate_per_s: float, datagram_bytes: int, host: str = "127.0.0.1") -> None:
        self.rate_per_s = rate_per_s
        self.datagram_bytes = max(datagram_bytes, _HEADER.size)
        self.host = host
        self._sent_at_ns: list[int] = []
        self._received: set[int] = set()
        self._sink: asyncio.DatagramTransport | None = None
        self._source: asyncio.DatagramTransport | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._skipped = 0
        self._closed = False

    @property
    def sink_address(self) -> tuple[str, int]:
        if self._sink is None:
            raise RuntimeError("the sink listens only inside `async with`")
        host, port = self._sink.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._sink, _ = await loop.create_datagram_endpoint(
            lambda: _Sink(self._received), local_addr=(self.host, 0))
        self._source, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0))
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        if self._tg is not None:
            await self._tg.__aexit__(None, None, None)
        for transport in (self._source, self._sink):
            if transport is not None:
                transport.close()

    def start(self, port: int) -> None:
        """Send to `port` (the link's best-effort port) from now on."""
        if self._tg is None or self._task is not None or self.rate_per_s <= 0:
            return
        self._task = self._tg.create_task(self._send(port), name="tsn-best-effort")

    def stop(self) -> None:
        """Stop sending (the sink keeps counting late arrivals)."""
        if self._task is not None:
            self._task.cancel()

    async def _send(self, port: int) -> None:
        source = self._source
        if source is None:
            return
        padding = bytes(self.datagram_bytes - _HEADER.size)
        t0 = time.monotonic()
        while True:
            due = int((time.monotonic() - t0) * self.rate_per_s)
            backlog = due - len(self._sent_at_ns) - self._skipped
            if backlog > _MAX_BURST:
                self._skipped += backlog - _MAX_BURST
                log.info("best_effort_burst_skipped", skipped=backlog - _MAX_BURST)
                backlog = _MAX_BURST
            for _ in range(backlog):
                seq = len(self._sent_at_ns)
                self._sent_at_ns.append(time.monotonic_ns())
                source.sendto(_HEADER.pack(seq) + padding, (self.host, port))
            await asyncio.sleep(_TICK_S)

    def statistics(self, start_ns: int, end_ns: int) -> BestEffortStatistics:
        """The datagrams sent in [start_ns, end_ns) (monotonic) and how many arrived."""
        offered = [seq for seq, t in enumerate(self._sent_at_ns) if start_ns <= t < end_ns]
        delivered = sum(1 for seq in offered if seq in self._received)
        return BestEffortStatistics(len(offered), delivered, self.datagram_bytes,
                                    (end_ns - start_ns) / 1e9, self._skipped)
