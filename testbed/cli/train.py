"""`testbed train --seed N --out DIR`: train the bearing models from the pump model.

`testbed train --federated --sites 2 --rounds R [--broker URL]` runs FedAvg across simulated
non-IID sites instead and writes `federated_report.json`, `federated_report.md` and
`federated_classifier.onnx`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

from testbed.cli.common import add_logging_options

if TYPE_CHECKING:
    from testbed.ai.federated import FederatedConfig, FederatedResult

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train the bearing anomaly detector and fault classifier")
    p.add_argument("--seed", type=int, default=0, help="seed of data and weights (default 0)")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    p.add_argument("--small", action="store_true", help="the quick configuration tests use")
    fl = p.add_argument_group("federated learning")
    fl.add_argument("--federated", action="store_true",
                    help="FedAvg across simulated non-IID sites instead of one central model")
    fl.add_argument("--sites", type=int, default=2, help="number of edge sites (default 2)")
    fl.add_argument("--rounds", type=int, default=None,
                    help="federated rounds (default 10, 5 with --small)")
    fl.add_argument("--local-epochs", type=int, default=None,
                    help="local epochs per round at each site (default 10)")
    fl.add_argument("--broker", default=None,
                    help="carry the weights over MQTT: mqtt://[user:password@]host[:port] "
                         "(default: in-process)")
    add_logging_options(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    if args.federated:
        return _federated(args)
    from testbed.ai.train import TrainConfig, train, write_outputs

    config = TrainConfig.small(args.seed) if args.small else TrainConfig(seed=args.seed)
    start = time.perf_counter()
    result = train(config)
    paths = write_outputs(result, args.out)
    print(result.card.markdown())
    print(f"trained in {time.perf_counter() - start:.1f} s; wrote "
          + ", ".join(str(p) for p in paths), flush=True)
    return 0


def _federated(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from testbed.ai.errors import FederatedError
    from testbed.ai.federated import FederatedConfig, default_sites
    from testbed.errors import ConfigError

    overrides: dict[str, object] = {}
    if args.rounds is not None:
        overrides["rounds"] = args.rounds
    if args.local_epochs is not None:
        overrides["local_epochs"] = args.local_epochs
    try:
        base = (FederatedConfig.small(args.seed, args.sites) if args.small
                else FederatedConfig(seed=args.seed, sites=default_sites(args.sites)))
        config = FederatedConfig.model_validate({**base.model_dump(), **overrides})
    except (ValueError, ValidationError) as exc:
        print(f"error: testbed train --federated: {exc}", flush=True)
        return 2
    start = time.perf_counter()
    try:
        result = asyncio.run(_run_federated(config, args.broker))
    except (ConfigError, FederatedError) as exc:
        print(f"error: {exc}", flush=True)
        return 1
    from testbed.ai.federated import write_outputs

    paths = write_outputs(result, args.out)
    print(result.report.markdown())
    print(f"federated training in {time.perf_counter() - start:.1f} s; wrote "
          + ", ".join(str(p) for p in paths), flush=True)
    return 0


async def _run_federated(config: FederatedConfig, broker: str | None) -> FederatedResult:
    from testbed.ai.federated import MqttTransport, run_federated
    from testbed.cli.cloud import broker_config

    if broker is None:
        return await run_federated(config)
    client = broker_config(broker)
    async with MqttTransport(client, [s.name for s in config.sites],
                             timeout_s=config.timeout_s) as transport:
        return await run_federated(config, transport)
