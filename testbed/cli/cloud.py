"""`testbed cloud`: run the cloud side (Sparkplug primary host) alone against a broker."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from testbed.cli.common import add_logging_options
from testbed.errors import ConfigError

if TYPE_CHECKING:  # the MQTT stack loads only when this command runs
    from drivers.mqtt import MqttClientConfig
    from testbed.cloud import CloudConfig

__all__ = ["broker_config", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cloud = sub.add_parser(
        "cloud", help="run the cloud side: Sparkplug primary host, telemetry store, twins"
    )
    cloud.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883",
        help="broker URL mqtt://[user:password@]host[:port] or mqtts://... (default local 1883)",
    )
    cloud.add_argument("--db", type=Path, default=Path("cloud.db"),
                       help="SQLite telemetry database (default ./cloud.db)")
    cloud.add_argument("--host-id", default="testbed-cloud",
                       help="Sparkplug host id of the STATE topic (default testbed-cloud)")
    cloud.add_argument("--ca-file", type=Path, default=None, help="mqtts: CA bundle to trust")
    cloud.add_argument("--duration", type=float, default=None,
                       help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    add_logging_options(cloud)
    cloud.set_defaults(func=_cloud)


def broker_config(url: str, ca_file: Path | None = None) -> MqttClientConfig:
    """An MQTT client config from `mqtt://[user:password@]host[:port]` (mqtts for TLS)."""
    from drivers.mqtt import MqttClientConfig, TlsConfig

    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"--broker {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = TlsConfig(ca_file=ca_file) if parts.scheme == "mqtts" else None
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"--broker {url!r}: {exc}") from exc
    password = SecretStr(parts.password) if parts.password else None
    return MqttClientConfig(
        host=parts.hostname, port=port, tls=tls, username=parts.username, password=password
    )


def _cloud(args: argparse.Namespace) -> int:
    from testbed.cloud import CloudConfig

    try:
        config = CloudConfig(
            mqtt=broker_config(args.broker, args.ca_file), host_id=args.host_id, db_path=args.db
        )
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    return asyncio.run(_serve(config, args.duration))


async def _serve(config: CloudConfig, duration_s: float | None) -> int:
    from testbed.cloud import CloudService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with CloudService(config) as cloud:
        print(f"cloud: host {config.host_id} on {config.mqtt.host}:{config.mqtt.port}, "
              f"database {config.db_path}", flush=True)
        try:
            async with asyncio.timeout(duration_s):
                await stop.wait()
        except TimeoutError:
            pass  # --duration elapsed
        stats = cloud.statistics()
    print(f"cloud: {stats.messages_ingested} messages ingested, {stats.duplicates} duplicates, "
          f"{stats.gaps} gaps, {sum(n for _, n in stats.rejected)} rejected", flush=True)
    return 0
