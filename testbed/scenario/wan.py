"""The emulated WAN between the sites, and the figures of the application across it.

`WanPart` owns one `EmulatedLink` per site: everything sent to `${wan.to.<site>}` reaches
the site's `${wan.listen.<site>}` through it (latency, jitter, loss, bandwidth; seeded).
A `wan_partition` fault loses every frame on every link for its window. `flow_figures`
joins a publisher's and a subscriber's event traces (`testbed.scenario.trace`, one
CLOCK_MONOTONIC for every process of the host) by sequence number: latency per message,
losses, duplicates, and what happened while the WAN was cut.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

from drivers.net import EmulatedLink, LinkProfile
from testbed.scenario.cross_site_spec import WanPartition, WanSpec
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.trace import read_trace

__all__ = ["CrossSiteFlow", "FlowFigures", "WanPart", "flow_figures"]

log = structlog.get_logger(__name__)


def _free_udp_port() -> int:
    """A UDP port free right now (the child binds it; the kernel hands out ports in order)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WanPart:
    """The emulated WAN: one link per destination site (latency, jitter, loss, bandwidth)."""

    def __init__(self, spec: WanSpec, sites: list[str]) -> None:
        self.spec = spec
        self.sites = sites
        self.links: dict[str, EmulatedLink] = {}
        self.values: dict[str, str] = {}
        self.partitions_ns: list[tuple[int, int | None]] = []
        """(start, end) of each partition, CLOCK_MONOTONIC ns (end None: still cut)."""
        self._profiles: dict[str, LinkProfile] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        for i, site in enumerate(self.sites):
            profile = LinkProfile(latency_ms=self.spec.latency_ms, jitter_ms=self.spec.jitter_ms,
                                  loss=self.spec.loss, bandwidth_mbps=self.spec.bandwidth_mbps,
                                  seed=self.spec.seed + i)
            link = await self._stack.enter_async_context(EmulatedLink(profile))
            listen = _free_udp_port()
            port = await link.add_port(("127.0.0.1", listen))
            self.links[site] = link
            self.values[f"wan.listen.{site}"] = f"127.0.0.1:{listen}"
            self.values[f"wan.to.{site}"] = f"127.0.0.1:{port.port}"
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def on_fault(self, fault: object, begin: bool) -> None:
        """A partition loses every frame on every link for its window."""
        if not isinstance(fault, WanPartition):
            return
        now = time.monotonic_ns()
        if begin:
            for site, link in self.links.items():
                self._profiles[site] = link.model.profile
                link.model.profile = link.model.profile.model_copy(update={"loss": 1.0})
            self.partitions_ns.append((now, None))
            log.info("wan_partitioned", links=len(self.links))
        else:
            for site, link in self.links.items():
                link.model.profile = self._profiles.get(site, link.model.profile)
            if self.partitions_ns and self.partitions_ns[-1][1] is None:
                self.partitions_ns[-1] = (self.partitions_ns[-1][0], now)
            log.info("wan_restored", links=len(self.links))

    def in_partition(self, t_ns: int) -> bool:
        return any(start <= t_ns and (end is None or t_ns < end)
                   for start, end in self.partitions_ns)

    def sample(self, t_s: float, metrics: MetricsRecorder) -> None:
        offered = delivered = lost = 0
        for link in self.links.values():
            stats = link.statistics()
            offered += stats.offered
            delivered += stats.delivered
            lost += stats.lost + stats.queue_drops
        metrics.gauge("wan_frames_offered", offered)
        metrics.gauge("wan_frames_delivered", delivered)
        metrics.gauge("wan_frames_lost", lost)

    def report_section(self) -> dict[str, Any]:
        return {"wan": {"emulated": True, **self.spec.model_dump(mode="json")}}


@dataclass(frozen=True, slots=True)
class CrossSiteFlow:
    """One direction of the distributed application: the publisher's CNF trace (seq in the
    first pin, QO in the second) and the subscriber's IND trace (seq first, QO second)."""

    name: str
    sent: Path
    received: Path


@dataclass(frozen=True, slots=True)
class FlowFigures:
    latencies_ms: list[float]
    sent: int
    received: int
    lost: int
    duplicated: int
    lost_in_partition: int = 0
    """Of `lost`, those sent while the WAN was partitioned."""
    sent_in_partition: int = 0


def flow_figures(flow: CrossSiteFlow,
                 in_partition: Callable[[int], bool] | None = None) -> FlowFigures:
    """Latency per message (publisher CNF -> subscriber IND, CLOCK_MONOTONIC) and losses
    between the first and the last sequence number the subscriber received; with
    `in_partition(t_ns)`, the losses and sends while the WAN was cut are counted apart."""
    sent: dict[int, int] = {}
    for row in read_trace(flow.sent):
        values = list(row.values())
        if len(values) >= 3 and values[2] in ("True", "1", "true"):
            sent.setdefault(int(float(values[1])), int(values[0]))
    cut = in_partition or (lambda _t: False)
    sent_in_partition = sum(1 for t in sent.values() if cut(t))
    seen: set[int] = set()
    latencies: list[float] = []
    duplicated = 0
    for row in read_trace(flow.received):
        values = list(row.values())
        if len(values) < 3 or values[2] not in ("True", "1", "true"):
            continue
        seq = int(float(values[1]))
        if seq in seen:
            duplicated += 1
            continue
        seen.add(seq)
        if seq in sent:
            latencies.append((int(values[0]) - sent[seq]) / 1e6)
    lost = lost_cut = 0
    if seen:
        low, high = min(seen), max(seen)
        missing = [seq for seq in sent if low <= seq <= high and seq not in seen]
        lost = len(missing)
        lost_cut = sum(1 for seq in missing if cut(sent[seq]))
    return FlowFigures(latencies, len(sent), len(seen), lost, duplicated, lost_cut,
                       sent_in_partition)
