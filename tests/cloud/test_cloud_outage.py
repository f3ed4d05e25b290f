"""Nothing is lost edge -> cloud through a 60 s outage at 1,000 msgs/s and an edge SIGKILL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cloud_testkit import EDGE, EdgeProcess, cloud_config

from drivers.mqtt import MosquittoBroker, MosquittoConfig
from testbed.cloud import CloudService, Sample

pytestmark = pytest.mark.usefixtures("needs_mosquitto")

RATE = 1000.0
OUTAGE_S = 60.0


def _check_exactly_once_in_order(samples: list[Sample], stored: list[tuple[int, int]]) -> None:
    received = [s.message_id for s in samples]
    assert len(received) == len(set(received)), "a message was ingested twice"
    assert set(received) >= {store_id for store_id, _ in stored}, "a stored message was lost"
    assert received == sorted(received), "the stream arrived out of order"  # type: ignore[type-var]


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_sixty_second_outage_at_1000_msgs_per_s_loses_nothing(tmp_path: Path) -> None:
    """60 s without broker at 1,000 msgs/s: afterwards the cloud has each message once, in order."""
    broker_config = MosquittoConfig(persistence=True, max_queued_messages=200_000)
    async with (
        MosquittoBroker(broker_config) as broker,
        CloudService(cloud_config(broker.port, tmp_path / "cloud.db")) as cloud,
        asyncio.TaskGroup() as group,
    ):
        await cloud.wait_connected(10)
        edge = EdgeProcess(broker.port, tmp_path / "edge.db", RATE, tmp_path / "edge.log")
        await edge.start(group)
        await edge.wait_stored(2000)  # two seconds live
        async with broker.stopped():
            before = len(edge.stored)
            await asyncio.sleep(OUTAGE_S)
            during = len(edge.stored) - before
        await edge.wait_stored(2000)  # and two more after the broker is back
        await edge.stop()
        assert edge.drained
        total = len(edge.stored)
        await cloud.wait_until(lambda s: s.messages_ingested >= total, 300)
        samples = await cloud.query(EDGE, "line", "counter")
        stats = cloud.statistics()
    assert during >= 0.9 * RATE * OUTAGE_S  # the edge kept its rate while the broker was down
    assert [s.value for s in samples] == [n for _, n in edge.stored]  # every value once, in order
    _check_exactly_once_in_order(samples, edge.stored)
    historical = sum(1 for s in samples if s.is_historical)
    assert historical >= during
    assert stats.inbox_dropped == 0
    print(
        f"outage: {during} messages stored during {OUTAGE_S:.0f} s, {total} in all, "
        f"{historical} replayed as historical, {stats.duplicates} duplicates dropped, 0 lost"
    )


@pytest.mark.slow
async def test_edge_sigkilled_during_outage_loses_nothing(tmp_path: Path) -> None:
    """An edge SIGKILLed during an outage and restarted delivers every stored message once."""
    store = tmp_path / "edge.db"
    async with (
        MosquittoBroker(MosquittoConfig(persistence=True)) as broker,
        CloudService(cloud_config(broker.port, tmp_path / "cloud.db")) as cloud,
        asyncio.TaskGroup() as group,
    ):
        await cloud.wait_connected(10)
        first = EdgeProcess(broker.port, store, 500, tmp_path / "edge1.log")
        await first.start(group)
        await first.wait_stored(300)
        async with broker.stopped():
            await first.wait_stored(1000)
            await first.kill()
        assert first.process is not None
        assert first.process.returncode == -9
        stored = list(first.stored)
        second = EdgeProcess(broker.port, store, 500, tmp_path / "edge2.log", start=10**6)
        await second.start(group)
        await second.wait_stored(300)
        await second.stop()
        stored += second.stored
        await cloud.wait_until(lambda s: s.messages_ingested >= len(stored), 120)
        samples = await cloud.query(EDGE, "line", "counter")
    _check_exactly_once_in_order(samples, stored)
    from_first = [s.value for s in samples if isinstance(s.value, int) and s.value < 10**6]
    assert from_first == list(range(1, len(from_first) + 1))  # no hole, no repeat
    assert len(from_first) >= len(first.stored)
