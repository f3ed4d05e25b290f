"""Link emulation: the deterministic model (gates, priorities, loss) and the UDP emulator."""

from __future__ import annotations

import asyncio
import time

from drivers.net import EmulatedLink, GateEntry, GateSchedule, LinkModel, LinkProfile

MS = 1_000_000
GATE = GateSchedule(entries=(GateEntry(duration_us=150, open_classes=frozenset({7})),
                             GateEntry(duration_us=850, open_classes=frozenset({0}))))


def control_with_background(profile: LinkProfile) -> list[int]:
    """1 kHz 100-byte control frames (class 7) over line-rate 1500-byte background (class 0)."""
    model = LinkModel(profile)
    for k in range(500):
        model.offer(k * MS, 100, 7)
    t = 0
    while t < 500 * MS:
        model.offer(t, 1500, 0)
        t += 120_000
    out = model.run_until(10**12)
    return sorted(d.delivered_ns - d.arrival_ns for d in out
                  if d.traffic_class == 7 and d.delivered_ns is not None)


def test_gate_windows() -> None:
    """A class waits for its window; a class never opened has none."""
    assert GATE.cycle_ns == MS
    assert GATE.next_window(0, 7) == (0, 150_000)
    assert GATE.next_window(200_000, 7) == (MS, MS + 150_000)
    assert GATE.next_window(200_000, 0) == (200_000, MS)
    assert GATE.next_window(0, 3) is None


def test_schedules_decide_control_latency() -> None:
    """FIFO lets background traffic delay control frames; priority bounds it by one frame;
    the gate schedule gives control frames their own window (deadline 150 us)."""
    fifo = control_with_background(LinkProfile(fifo=True))
    prio = control_with_background(LinkProfile())
    gated = control_with_background(LinkProfile(gate=GATE))
    assert sum(d > 150_000 for d in fifo) > 400
    assert max(prio) <= 130_000  # at most one background frame (120 us) ahead
    assert max(gated) < 20_000
    assert len(gated) == 500


def test_model_is_deterministic_and_counts_loss() -> None:
    """The same seed gives the same outcome; loss and jitter follow the profile."""
    profile = LinkProfile(loss=0.2, latency_ms=5, jitter_ms=2, seed=3)

    def run() -> list[tuple[int | None, str]]:
        model = LinkModel(profile)
        for k in range(1000):
            model.offer(k * MS, 200, 0)
        return [(d.delivered_ns, d.reason) for d in model.run_until(10**12)]

    first = run()
    assert first == run()
    lost = sum(reason == "lost" for _, reason in first)
    assert 150 < lost < 250
    delays = [t - k * MS for k, (t, _) in enumerate(first) if t is not None]
    assert min(delays) >= 5 * MS
    assert max(delays) <= 7 * MS + 100_000


def test_queue_overflow_drops_arrivals() -> None:
    """A full class queue drops the arriving frame and counts it."""
    model = LinkModel(LinkProfile(bandwidth_mbps=1, queue_frames=10))
    for _ in range(50):
        model.offer(0, 1500, 0)
    model.run_until(10**12)
    assert model.stats.queue_drops == 40
    assert model.stats.delivered == 10


async def test_udp_datagrams_cross_the_emulated_link() -> None:
    """Datagrams sent to a link port reach the target after the emulated latency."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.put_nowait((data, time.monotonic()))

    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=("127.0.0.1", 0))
    try:
        async with EmulatedLink(LinkProfile(latency_ms=30)) as link:
            port = await link.add_port(sink.get_extra_info("sockname"), traffic_class=5)
            sent_at = time.monotonic()
            for i in range(5):
                sender.sendto(f"m{i}".encode(), ("127.0.0.1", port.port))
            received = [await asyncio.wait_for(got.get(), 5) for _ in range(5)]
            assert [d for d, _ in received] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
            assert received[0][1] - sent_at >= 0.025
            assert link.statistics().delivered == 5
    finally:
        sink.close()
        sender.close()
