"""Jittered exponential backoff, so a fleet of gateways does not reconnect in lockstep."""

from __future__ import annotations

import random

from drivers.mqtt.config import ReconnectConfig

__all__ = ["backoff_delay_s"]


def backoff_delay_s(
    attempt: int, config: ReconnectConfig, rng: random.Random | None = None
) -> float:
    """Delay before reconnect attempt number `attempt` (0 for the first retry).

    The ceiling grows as initial * multiplier**attempt up to max; a `jitter` fraction of it is
    drawn uniformly, the rest is fixed ("equal jitter" when jitter = 0.5).
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = config.max_delay_s
    # cap the exponent so huge attempt counts cannot overflow a float
    if attempt < 64:
        ceiling = min(config.max_delay_s, config.initial_delay_s * config.multiplier**attempt)
    fixed = ceiling * (1.0 - config.jitter)
    draw = (rng or random).uniform(0.0, ceiling * config.jitter)
    return fixed + draw
