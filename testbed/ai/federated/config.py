"""What a federated run simulates and how it trains: sites with non-IID data, rounds, epochs.

The default split (`default_sites`) gives every site its own band of pump speed and valve
opening (low speed with a wide-open valve at site A, high speed with a throttled valve at site
B, bands in between for more sites) and its own fault mix: a majority defect (outer race at A,
inner race at B, alternating for more sites) at every CWRU severity, ball defects at every
site, and the other race defect only once, as a single mild (0.007 in) run. Each site thus
sees other operating points and almost no examples of the other site's main fault, the
label-and-feature skew that makes federated learning worth doing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from testbed.ai.train import DEFAULT_SEVERITIES

__all__ = ["FaultRuns", "FederatedConfig", "SiteSpec", "default_sites"]

FaultName = Literal["outer_race", "inner_race", "ball"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaultRuns(_Frozen):
    """Runs with one defect at each of some severities."""

    fault: FaultName
    severities_in: tuple[float, ...] = Field(min_length=1)
    runs_per_severity: int = Field(ge=1)


class SiteSpec(_Frozen):
    """One edge site: where its pumps run and which faults it has seen."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    speed_rpm: tuple[float, float]
    valve_opening: tuple[float, float]
    healthy_runs: int = Field(ge=1)
    faults: tuple[FaultRuns, ...]


def _bands(low: float, high: float, n: int, gap: float) -> list[tuple[float, float]]:
    width = (high - low - gap * (n - 1)) / n
    return [(round(low + i * (width + gap), 6), round(low + i * (width + gap) + width, 6))
            for i in range(n)]


def default_sites(count: int = 2, severities_in: tuple[float, ...] = DEFAULT_SEVERITIES,
                  runs_per_severity: int = 2) -> tuple[SiteSpec, ...]:
    """The documented non-IID split for `count` sites (see the module docstring)."""
    if count < 2:
        raise ValueError(f"federated learning needs at least 2 sites, got {count}")
    speeds = _bands(1000.0, 1800.0, count, 100.0 / (count - 1))
    valves = _bands(0.3, 1.0, count, 0.1 / (count - 1))[::-1]
    majors: tuple[FaultName, FaultName] = ("outer_race", "inner_race")
    sites = []
    for i in range(count):
        major, minor = majors[i % 2], majors[(i + 1) % 2]
        sites.append(SiteSpec(
            name=f"site_{chr(ord('a') + i)}", speed_rpm=speeds[i], valve_opening=valves[i],
            healthy_runs=runs_per_severity * len(severities_in),
            faults=(FaultRuns(fault=major, severities_in=severities_in,
                              runs_per_severity=runs_per_severity),
                    FaultRuns(fault="ball", severities_in=severities_in,
                              runs_per_severity=max(1, runs_per_severity // 2)),
                    FaultRuns(fault=minor, severities_in=(min(severities_in),),
                              runs_per_severity=1))))
    return tuple(sites)


class FederatedConfig(_Frozen):
    """Sites, held-out data and training; `small()` is the quick variant the tests use."""

    seed: int = 0
    sites: tuple[SiteSpec, ...] = Field(default_factory=default_sites, min_length=2)
    rounds: int = Field(default=10, ge=1)
    local_epochs: int = Field(default=10, ge=1)
    """Full-batch Adam epochs each site runs per round (optimizer state restarts each round)."""
    learning_rate: float = Field(default=0.01, gt=0.0)
    l2: float = Field(default=1e-4, ge=0.0)
    hidden_units: int = Field(default=16, ge=2)
    severities_in: tuple[float, ...] = DEFAULT_SEVERITIES
    test_runs_per_case: int = Field(default=1, ge=1)
    """Held-out runs per (site, class, severity), at each site's operating points."""
    run_duration_s: float = Field(default=3.0, gt=1.0)
    block_every_s: float = Field(default=0.2, gt=0.0)
    timeout_s: float = Field(default=60.0, gt=0.0)
    """Deadline for any one message of a round."""

    @model_validator(mode="after")
    def _unique_site_names(self) -> FederatedConfig:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"site names must be unique, got {names}")
        return self

    @classmethod
    def small(cls, seed: int = 0, sites: int = 2) -> FederatedConfig:
        """Fewer rounds (the tests' configuration; still shows the federated gain)."""
        return cls(seed=seed, sites=default_sites(sites), rounds=5)

    @property
    def total_epochs(self) -> int:
        """What the local-only and centralized baselines train for, in total."""
        return self.rounds * self.local_epochs
