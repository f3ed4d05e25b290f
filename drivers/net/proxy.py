"""An emulated link on loopback: UDP datagrams pass through a `LinkModel`.

`EmulatedLink` owns one model (so every port on it shares the bandwidth and the gate
schedule) and forwards datagrams arriving at its ports to their targets at the
times the model computes. The model is exact; the forwarding happens on the
asyncio loop, whose timers have about a millisecond of resolution, so delays below
that are approximate on the wire but exact in `statistics()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from drivers.errors import DriverError
from drivers.net.link import LinkModel, LinkProfile, LinkStatistics

__all__ = ["EmulatedLink", "LinkPort"]

log = structlog.get_logger(__name__)

_TICK_S = 0.0005


@dataclass(frozen=True, slots=True)
class LinkPort:
    """A listening port of the link: datagrams to it go to `target` as `traffic_class`."""

    port: int
    target: tuple[str, int]
    traffic_class: int


class _Ingress(asyncio.DatagramProtocol):
    def __init__(self, link: EmulatedLink, target: tuple[str, int], traffic_class: int) -> None:
        self.link = link
        self.target = target
        self.traffic_class = traffic_class

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.link._arrive(data, self.target, self.traffic_class)


class EmulatedLink:
    """A one-shot async context manager: add ports, then traffic flows through the model."""

    def __init__(self, profile: LinkProfile, host: str = "127.0.0.1", *,
                 epoch_ns: int | None = None) -> None:
        """`epoch_ns`: the `time.monotonic_ns()` the link clock counts from (the time base
        of the gate schedule's `base_time_ns`), so a caller can align the gate windows to
        an application's cycle; it must not lie in the future. Default: when entered."""
        self.profile = profile
        self.host = host
        self.model = LinkModel(profile)
        self._frames: dict[int, tuple[bytes, tuple[str, int]]] = {}
        self._transports: list[asyncio.DatagramTransport] = []
        self._egress: asyncio.DatagramTransport | None = None
        self._due: list[tuple[int, int, bytes, tuple[str, int]]] = []  # heap by time
        self._task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._closed = False
        self._epoch_ns = epoch_ns
        self._t0_ns = 0

    def now_ns(self) -> int:
        return time.monotonic_ns() - self._t0_ns

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        now = time.monotonic_ns()
        if self._epoch_ns is not None and self._epoch_ns > now:
            raise DriverError(f"link epoch {self._epoch_ns} ns lies in the future (now {now})")
        self._t0_ns = now if self._epoch_ns is None else self._epoch_ns
        self._egress, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(self.host, 0))
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self._pump(), name="emulated-link")
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._due.clear()
        for transport in self._transports:
            transport.close()
        if self._egress is not None:
            self._egress.close()
        if self._task is not None:
            self._task.cancel()
        if self._tg is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._tg.__aexit__(None, None, None)

    async def add_port(self, target: tuple[str, int], traffic_class: int = 0,
                       port: int = 0) -> LinkPort:
        """Listen on `port` (0: free port) and forward to `target` through the link."""
        if self._egress is None:
            raise DriverError("add ports inside `async with EmulatedLink(...)`")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Ingress(self, target, traffic_class), local_addr=(self.host, port))
        self._transports.append(transport)
        bound = transport.get_extra_info("sockname")[1]
        return LinkPort(int(bound), target, traffic_class)

    def _arrive(self, data: bytes, target: tuple[str, int], traffic_class: int) -> None:
        frame_id = self.model.offer(self.now_ns(), len(data) + 42, traffic_class)  # + headers
        self._frames[frame_id] = (data, target)

    async def _pump(self) -> None:
        """Every tick: settle transmissions that have started, send what is due."""
        while True:
            now = self.now_ns()
            for d in self.model.run_until(now + 1):
                data, target = self._frames.pop(d.frame_id, (b"", ("", 0)))
                if d.delivered_ns is not None:
                    heapq.heappush(self._due, (d.delivered_ns, d.frame_id, data, target))
            while self._due and self._due[0][0] <= now and self._egress is not None:
                _, _, data, target = heapq.heappop(self._due)
                self._egress.sendto(data, target)
            await asyncio.sleep(_TICK_S)

    def statistics(self) -> LinkStatistics:
        return self.model.stats
