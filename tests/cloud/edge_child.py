"""An edge gateway in its own process, for the outage and SIGKILL tests.

    python edge_child.py PORT STORE RATE [START]

Reports `counter` (1, 2, 3, ... from START) on device `line` of edge node `plant/edge1` at RATE
messages per second through an `EdgeLink`, printing `stored ID N` once each report is durable.
Writing `stop` on stdin ends reporting; the child then waits until the store is drained,
prints `drained` and exits. It is SIGKILLed in the crash test, never closed politely there.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import structlog

from drivers.mqtt import MqttClientConfig, ReconnectConfig, StoreConfig
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig
from drivers.mqtt.sparkplug import DataType, EdgeNodeConfig, MetricSpec

TICK_S = 0.01


async def run(port: int, store: Path, rate: float, start: int) -> None:
    config = EdgeLinkConfig(
        mqtt=MqttClientConfig(
            port=port, reconnect=ReconnectConfig(initial_delay_s=0.05, max_delay_s=0.5)
        ),
        node=EdgeNodeConfig(
            group_id="plant", edge_node_id="edge1", primary_host_id="cloud", data_qos=1
        ),
        store=StoreConfig(path=store),
        replay_rate_msgs_per_s=6000,
    )
    devices = {"line": [MetricSpec("counter", DataType.INT64, 0)]}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if sys.stdin.readline() else None)
    async with EdgeLink(config, devices=devices) as link:
        print("started", flush=True)
        counter = start
        per_tick = max(1, round(rate * TICK_S))
        next_tick = time.monotonic()
        while not stop.is_set():
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(link.report("line", {"counter": counter + i}))
                    for i in range(per_tick)
                ]
            for offset, task in enumerate(tasks):
                print(f"stored {task.result()} {counter + offset}", flush=True)
            counter += per_tick
            next_tick += TICK_S
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        await link.wait_drained(300)
        print("drained", flush=True)
    loop.remove_reader(sys.stdin.fileno())


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    start = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    asyncio.run(run(int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), start))


if __name__ == "__main__":
    main()
