"""`testbed train --seed N --out DIR`: train the bearing models from the pump model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from testbed.cli.common import add_logging_options

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train the bearing anomaly detector and fault classifier")
    p.add_argument("--seed", type=int, default=0, help="seed of data and weights (default 0)")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    p.add_argument("--small", action="store_true", help="the quick configuration tests use")
    add_logging_options(p)
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from testbed.ai.train import TrainConfig, train, write_outputs

    config = TrainConfig.small(args.seed) if args.small else TrainConfig(seed=args.seed)
    start = time.perf_counter()
    result = train(config)
    paths = write_outputs(result, args.out)
    print(result.card.markdown())
    print(f"trained in {time.perf_counter() - start:.1f} s; wrote "
          + ", ".join(str(p) for p in paths), flush=True)
    return 0
