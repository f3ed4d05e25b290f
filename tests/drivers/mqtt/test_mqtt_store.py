"""MessageStore on real SQLite files: ids, acks, capacity policies, crash survival."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest

from drivers.mqtt import MessageStore, StoreConfig, StoreFullError, StoreState

CHILD = Path(__file__).with_name("mqtt_child.py")


async def test_ids_grow_and_survive_reopen_even_when_emptied(tmp_path: Path) -> None:
    """Ids increase strictly, are never reused after acks, and continue across reopen."""
    config = StoreConfig(path=tmp_path / "q.db")
    async with MessageStore(config) as store:
        first = [await store.append("s", "t", b"x") for _ in range(5)]
        assert [m.id for m in first] == sorted({m.id for m in first})
        for message in first:
            store.ack(message.id)
        await store.flush()
        assert store.statistics().pending_messages == 0
    async with MessageStore(config) as store:
        again = await store.append("s", "t", b"y")
        assert again.id > first[-1].id
        assert store.last_id == again.id


async def test_pending_messages_survive_reopen_in_order(tmp_path: Path) -> None:
    """Unacked messages are read back after reopen, per stream, in id order."""
    config = StoreConfig(path=tmp_path / "q.db")
    async with MessageStore(config) as store:
        for index in range(6):
            await store.append(f"s{index % 2}", f"t/{index}", bytes([index]))
        store.ack(1)
    async with MessageStore(config) as store:
        assert await store.pending_by_stream() == {"s0": 2, "s1": 3}
        s1 = await store.fetch("s1", 0, 10)
        assert [m.payload for m in s1] == [b"\x01", b"\x03", b"\x05"]
        assert [m.id for m in await store.fetch("s1", s1[0].id, 10)] == [s1[1].id, s1[2].id]
        assert store.statistics().pending_messages == 5


async def test_store_uses_wal_and_configured_synchronous(tmp_path: Path) -> None:
    """The database runs in WAL mode with the configured synchronous level."""
    path = tmp_path / "q.db"
    async with MessageStore(StoreConfig(path=path, synchronous="FULL")) as store:
        await store.append("s", "t", b"x")
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_drop_oldest_overflow_is_counted(tmp_path: Path) -> None:
    """Past the byte budget, drop_oldest deletes the oldest messages and counts them."""
    # each message is 10 payload + 1 topic + 1 stream = 12 bytes; 5 fit in 60
    config = StoreConfig(path=tmp_path / "q.db", max_bytes=60, overflow="drop_oldest")
    async with MessageStore(config) as store:
        ids = [(await store.append("s", "t", bytes(10))).id for _ in range(8)]
        stats = store.statistics()
        assert stats.dropped_oldest == 3
        assert stats.pending_messages == 5
        assert stats.pending_bytes == 60
        assert store.removed_through_id == ids[2]
        assert [m.id for m in await store.fetch("s", 0, 100)] == ids[3:]


async def test_reject_new_overflow_is_counted(tmp_path: Path) -> None:
    """Past the byte budget, reject_new refuses the new message with StoreFullError, counted."""
    config = StoreConfig(path=tmp_path / "q.db", max_bytes=60, overflow="reject_new")
    async with MessageStore(config) as store:
        kept = [(await store.append("s", "t", bytes(10))).id for _ in range(5)]
        for _ in range(2):
            with pytest.raises(StoreFullError, match="store full"):
                await store.append("s", "t", bytes(10))
        stats = store.statistics()
        assert stats.rejected_new == 2
        assert stats.dropped_oldest == 0
        assert [m.id for m in await store.fetch("s", 0, 100)] == kept
        store.ack(kept[0])
        await store.flush()
        assert (await store.append("s", "t", bytes(10))).id > kept[-1]


async def test_expired_messages_are_removed_and_counted(tmp_path: Path) -> None:
    """Messages older than max_age_s are deleted oldest-first and counted as expired."""
    config = StoreConfig(path=tmp_path / "q.db", max_age_s=0.2)
    async with MessageStore(config) as store:
        old = [await store.append("s", "t", b"old") for _ in range(3)]
        await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # the age check runs at most once a second
        fresh = await store.append("s", "t", b"new")
        assert store.statistics().expired == 3
        assert [m.id for m in await store.fetch("s", 0, 10)] == [fresh.id]
        assert store.removed_through_id >= old[-1].id


async def test_concurrent_appends_are_group_committed(tmp_path: Path) -> None:
    """Many concurrent appends share commits and all get distinct ids."""
    async with MessageStore(StoreConfig(path=tmp_path / "q.db")) as store:
        stored = await asyncio.gather(*(store.append("s", "t", b"x") for _ in range(200)))
        assert len({m.id for m in stored}) == 200
        assert store.statistics().commits < 200


async def test_close_is_idempotent(tmp_path: Path) -> None:
    """aclose twice is harmless and the store refuses use afterwards."""
    store = MessageStore(StoreConfig(path=tmp_path / "q.db"))
    async with store:
        await store.append("s", "t", b"x")
    await store.aclose()
    assert store.state is StoreState.CLOSED
    with pytest.raises(RuntimeError, match="one-shot"):
        await store.__aenter__()


async def test_committed_messages_survive_sigkill(tmp_path: Path) -> None:
    """Every message a process stored is still there after that process is SIGKILLed."""
    path = tmp_path / "q.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), "enqueue", str(path), "300", stdout=asyncio.subprocess.PIPE
    )
    stored: list[int] = []
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30):
            while (line := (await child.stdout.readline()).decode().strip()) != "done":
                assert line.startswith("stored "), line
                stored.append(int(line.split()[1]))
    finally:
        child.kill()
        await child.wait()
    assert child.returncode == -9
    async with MessageStore(StoreConfig(path=path)) as store:
        replayed = await store.fetch("s", 0, 1000)
        assert [m.id for m in replayed] == stored
        assert [int.from_bytes(m.payload, "big") for m in replayed] == list(range(300))


async def test_out_of_order_acks_delete_exactly_the_acked_ids(tmp_path: Path) -> None:
    """Acks in any order, with gaps and repeats, delete those messages and no others."""
    async with MessageStore(StoreConfig(path=tmp_path / "q.db")) as store:
        stored = await asyncio.gather(*(store.append("s", "t", b"12345") for _ in range(20)))
        ids = [m.id for m in stored]
        acked = [ids[7], ids[3], ids[4], ids[5], ids[19], ids[0], ids[4], ids[10], ids[11]]
        for message_id in acked:
            store.ack(message_id)
        await store.flush()
        left = [m.id for m in await store.fetch("s", 0, 100)]
        assert left == [i for i in ids if i not in set(acked)]
        stats = store.statistics()
        assert stats.pending_messages == 12
        assert stats.pending_bytes == 12 * (5 + 1 + 1)
        assert stats.acked == 8


async def test_batched_appends_continue_ids_after_per_message_inserts(tmp_path: Path) -> None:
    """A batch that overflows (one by one, drop_oldest) and batches that fit (executemany)
    hand out strictly growing ids that survive a reopen."""
    config = StoreConfig(path=tmp_path / "q.db", max_bytes=120, overflow="drop_oldest")
    async with MessageStore(config) as store:
        first = await asyncio.gather(*(store.append("s", "t", b"x" * 10) for _ in range(15)))
        assert store.statistics().dropped_oldest == 5
        for message in first:
            store.ack(message.id)
        second = await asyncio.gather(*(store.append("s", "t", b"y" * 10) for _ in range(5)))
        ids = [m.id for m in (*first, *second)]
        assert ids == sorted(set(ids))
        assert store.last_id == ids[-1]
    async with MessageStore(config) as store:
        assert [m.id for m in await store.fetch("s", 0, 100)] == [m.id for m in second]
        assert (await store.append("s", "t", b"z")).id == ids[-1] + 1


async def test_append_many_commits_once_and_reports_refusals_per_message(tmp_path: Path) -> None:
    """append_many stores its messages in order in one commit; under reject_new the ones over
    the budget come back as StoreFullError while the others are stored."""
    config = StoreConfig(path=tmp_path / "q.db", max_bytes=40, overflow="reject_new")
    async with MessageStore(config) as store:
        seen: list[int] = []
        store.add_append_listener(lambda m: seen.append(m.id))
        commits = store.statistics().commits
        outcomes = await store.append_many(
            [("s", "t", b"x" * 10), ("s", "t", b"y" * 30), ("s", "t", b"z" * 10)]
        )
        assert store.statistics().commits == commits + 1
        first, refused, third = outcomes
        assert isinstance(refused, StoreFullError)
        assert not isinstance(first, StoreFullError)
        assert not isinstance(third, StoreFullError)
        assert (first.payload, third.payload) == (b"x" * 10, b"z" * 10)
        assert seen == [first.id, third.id]
        assert [m.id for m in await store.fetch("s", 0, 10)] == seen
        assert await store.append_many([]) == []
