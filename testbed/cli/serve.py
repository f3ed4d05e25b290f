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
    return asyncio.run(GatewayDaemon(config, Path(args.config)).run())
