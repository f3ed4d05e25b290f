"""The emulated WAN part: per-site links that carry real datagrams with the profile's delay."""

from __future__ import annotations

import asyncio
import time

from testbed.scenario.cross_site_spec import WanSpec
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.wan import WanPart


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(maxsize=100)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.received.put_nowait((data, time.monotonic()))


async def test_datagrams_to_a_site_cross_its_link_with_the_latency() -> None:
    """Sent to `wan.to.site_b`, a datagram reaches `wan.listen.site_b` after >= the latency."""
    metrics = MetricsRecorder()
    async with WanPart(WanSpec(latency_ms=30, jitter_ms=5, loss=0.0), ["site_a", "site_b"]
                       ) as wan:
        assert set(wan.values) == {"wan.to.site_a", "wan.listen.site_a", "wan.to.site_b",
                                   "wan.listen.site_b"}
        host, port = wan.values["wan.listen.site_b"].split(":")
        loop = asyncio.get_running_loop()
        inbox = _Inbox()
        listener, _ = await loop.create_datagram_endpoint(lambda: inbox,
                                                          local_addr=(host, int(port)))
        to_host, to_port = wan.values["wan.to.site_b"].split(":")
        sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=(to_host, int(to_port)))
        try:
            sent_at = time.monotonic()
            sender.sendto(b"verdict")
            async with asyncio.timeout(2):
                data, arrived_at = await inbox.received.get()
        finally:
            sender.close()
            listener.close()
        wan.sample(1.0, metrics)
    assert data == b"verdict"
    assert arrived_at - sent_at >= 0.030
    assert metrics.gauge_value("wan_frames_offered") == 1
    assert metrics.gauge_value("wan_frames_delivered") == 1
    assert metrics.gauge_value("wan_frames_lost") == 0
    assert wan.report_section()["wan"]["emulated"] is True
