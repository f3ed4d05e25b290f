"""Each site's training blocks and the common held-out set, simulated from the pump model.

Seeds: one stream per site for its training runs, one for the held-out runs, one for the
initial weights, all spawned from the configuration's seed. The held-out set has every
(class, severity) case at every site's operating points, from seeds no training run used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.sim import PumpConfig
from testbed.ai.dataset import (
    FaultClass,
    FeatureSet,
    OperatingRange,
    RunSpec,
    concat,
    draw_runs,
    simulate_runs,
)
from testbed.ai.federated.config import FederatedConfig, SiteSpec

__all__ = ["FederatedData", "SiteData", "build_data", "initial_rng", "site_data",
           "waveform_bytes_per_block"]


@dataclass(frozen=True, slots=True)
class SiteData:
    """One site's training blocks."""

    spec: SiteSpec
    blocks: FeatureSet
    runs: int


@dataclass(frozen=True, slots=True)
class FederatedData:
    """Every site's data and the common held-out set."""

    sites: tuple[SiteData, ...]
    test: FeatureSet

    @property
    def pooled(self) -> FeatureSet:
        """All sites' blocks together (what centralized training sees)."""
        parts = [s.blocks for s in self.sites]
        return FeatureSet(np.concatenate([p.features for p in parts]),
                          np.concatenate([p.labels for p in parts]),
                          np.concatenate([p.severity_in for p in parts]),
                          np.concatenate([p.run_index for p in parts]))


def _site_specs(rng: np.random.Generator, site: SiteSpec, duration_s: float) -> list[RunSpec]:
    operating = OperatingRange(site.speed_rpm, site.valve_opening)
    specs = draw_runs(rng, runs_per_case=1, severities_in=(0.0,), classes=(FaultClass.HEALTHY,),
                      operating=operating, duration_s=duration_s,
                      healthy_runs=site.healthy_runs)
    for runs in site.faults:
        specs += draw_runs(rng, runs_per_case=runs.runs_per_severity,
                           severities_in=runs.severities_in,
                           classes=(FaultClass[runs.fault.upper()],), operating=operating,
                           duration_s=duration_s)
    return specs


def _streams(config: FederatedConfig) -> list[np.random.Generator]:
    sequences = np.random.SeedSequence(config.seed).spawn(len(config.sites) + 2)
    return [np.random.default_rng(s) for s in sequences]


def initial_rng(config: FederatedConfig) -> np.random.Generator:
    """The stream the initial weights come from (shared by federated and baselines)."""
    return _streams(config)[-1]


def build_data(config: FederatedConfig) -> FederatedData:
    """Simulate every site's training runs and the held-out runs."""
    streams = _streams(config)
    sites = []
    for site, rng in zip(config.sites, streams, strict=False):
        specs = _site_specs(rng, site, config.run_duration_s)
        sites.append(SiteData(site, concat(simulate_runs(specs, config.block_every_s)),
                              len(specs)))
    test_rng = streams[len(config.sites)]
    test_specs: list[RunSpec] = []
    for site in config.sites:
        test_specs += draw_runs(test_rng, runs_per_case=config.test_runs_per_case,
                                severities_in=config.severities_in,
                                operating=OperatingRange(site.speed_rpm, site.valve_opening),
                                duration_s=config.run_duration_s)
    test = concat(simulate_runs(test_specs, config.block_every_s))
    return FederatedData(tuple(sites), test)


def site_data(config: FederatedConfig, name: str) -> SiteData:
    """One site's training blocks alone (the same as `build_data` gives it)."""
    names = [s.name for s in config.sites]
    if name not in names:
        raise ValueError(f"unknown site {name!r}; sites: {names}")
    index = names.index(name)
    site, rng = config.sites[index], _streams(config)[index]
    specs = _site_specs(rng, site, config.run_duration_s)
    return SiteData(site, concat(simulate_runs(specs, config.block_every_s)), len(specs))


def waveform_bytes_per_block() -> int:
    """Bytes of one raw vibration block as float32 (what centralising raw data would move)."""
    return 4 * PumpConfig().vibration.block_samples
