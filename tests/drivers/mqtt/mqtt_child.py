"""A separate process for the crash tests: it is killed with SIGKILL, never closed politely.

    python mqtt_child.py will PORT TOPIC          connect with a last will, print "connected"
    python mqtt_child.py publish PORT STORE TOPIC store-and-forward forever, print each stored id
    python mqtt_child.py enqueue STORE COUNT      store COUNT messages (no broker), print "done"
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import structlog

from drivers.mqtt import (
    MessageStore,
    MqttClient,
    MqttClientConfig,
    ReconnectConfig,
    StoreConfig,
    StoreForwardPublisher,
    WillConfig,
    stamp_store_id,
)

FAST = ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.3)


async def will(port: int, topic: str) -> None:
    will = WillConfig(topic=topic, payload=b"dead")
    config = MqttClientConfig(port=port, keepalive_s=5, will=will)
    async with MqttClient(config) as client:
        await client.wait_connected()
        print("connected", flush=True)
        await asyncio.Event().wait()


async def publish(port: int, store_path: Path, topic: str) -> None:
    config = MqttClientConfig(port=port, reconnect=FAST)
    async with (
        MqttClient(config) as client,
        MessageStore(StoreConfig(path=store_path)) as store,
        StoreForwardPublisher(client, store, encoder=stamp_store_id) as publisher,
    ):
        await client.wait_connected()
        print("connected", flush=True)
        while True:
            store_id = await publisher.publish(topic, b"x")
            print(f"stored {store_id}", flush=True)
            await asyncio.sleep(0.005)


async def enqueue(store_path: Path, count: int) -> None:
    async with MessageStore(StoreConfig(path=store_path)) as store:
        for index in range(count):
            stored = await store.append("s", "t", index.to_bytes(4, "big"))
            print(f"stored {stored.id}", flush=True)
        print("done", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    # stdout carries the protocol lines; logs go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    mode = sys.argv[1]
    if mode == "will":
        asyncio.run(will(int(sys.argv[2]), sys.argv[3]))
    elif mode == "publish":
        asyncio.run(publish(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
    elif mode == "enqueue":
        asyncio.run(enqueue(Path(sys.argv[2]), int(sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
