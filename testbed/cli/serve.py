"""`testbed serve --config gateway.yaml`: the gateway daemon."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", help="run the gateway daemon (devices with FORTE-compatible management ports)",
        description="Run the configured devices; 4diac IDE deploys to their management ports. "
        "What is deployed is kept as a boot file and restored on restart. SIGTERM stops the "
        "resources cleanly; SIGHUP re-reads the config (logging applies live).")
    serve.add_argument("--config", required=True, metavar="FILE",
                       help="gateway YAML (see configs/gateway.yaml)")
    serve.add_argument("--check", action="store_true",
                       help="validate the config and exit (0 if valid)")
    serve.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                       help="serve live Prometheus metrics (resource counters) on "
                            "127.0.0.1:PORT (0: a free port)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from testbed.errors import ConfigError
    from testbed.gateway.config import load_gateway_config
    from testbed.gateway.daemon import GatewayDaemon
    from testbed.logconfig import configure_logging

    try:
        config = load_gateway_config(args.config)
    except ConfigError as exc:
        print(f"testbed serve: invalid config:\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: valid ({len(config.devices)} device(s))")
        return 0
    configure_logging(config.logging.format, config.logging.level)
    daemon = GatewayDaemon(config, Path(args.config))
    if args.metrics_port is None:
        return asyncio.run(daemon.run())
    from testbed.metrics_endpoint import MetricsEndpoint, resource_statistics_source

    endpoint = MetricsEndpoint(
        [resource_statistics_source(lambda: [h.device for h in daemon.hosts])],
        port=args.metrics_port)
    endpoint.start()
    print(f"live metrics: {endpoint.url}", file=sys.stderr, flush=True)
    try:
        return asyncio.run(daemon.run())
    finally:
        endpoint.close()
