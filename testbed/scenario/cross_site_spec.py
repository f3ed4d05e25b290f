"""The cross-site parts of a scenario file: site processes, the WAN and federated learning
(testbed 5.0, `scenarios/testbed50-cross-site`; its controller-to-I/O link is a
`testbed.scenario.tsn_spec.TsnLinkSpec`).

A site is a scenario of its own (`sites/<name>.yaml`) that the runner starts as a child
`testbed run` process; `${broker.port}`, `${wan.listen.<site>}` and `${wan.to.<site>}` in
its file are the parent's endpoints, filled in before the child starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["FederatedSpec", "SiteProcessSpec", "WanPartition", "WanSpec"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteProcessSpec(_Frozen):
    """One edge site run as its own OS process (a child `testbed run` of `scenario`)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    scenario: str
    """The site's scenario file, relative to this scenario's folder."""
    edge_node: str
    """The Sparkplug edge node id its telemetry uses (the cloud counts its messages)."""
    start_timeout_s: float = Field(default=30.0, gt=0)
    """Process start -> its edge node born at the cloud; past it the site is reported dead."""
    publishes_to: str | None = None
    """The site its cross-site PUBLISH sends to (through the WAN)."""
    publish_trace: str | None = None
    """The publisher's traced CNF (`App.FB.CNF`, pins: sequence number, QO)."""
    subscribe_trace: str | None = None
    """The subscriber's traced IND (`App.FB.IND`, pins: sequence number, QO)."""


class WanSpec(_Frozen):
    """The emulated WAN between the sites (one EmulatedLink per direction, in the runner)."""

    latency_ms: float = Field(default=40.0, ge=0)
    jitter_ms: float = Field(default=10.0, ge=0)
    loss: float = Field(default=0.01, ge=0, le=1)
    bandwidth_mbps: float = Field(default=20.0, gt=0)
    seed: int = 0


class WanPartition(_Frozen):
    """The WAN between the sites is cut for the window (every frame lost); each site runs on."""

    kind: Literal["wan_partition"]
    start_s: float = Field(ge=0)
    end_s: float


class FederatedSpec(_Frozen):
    """FedAvg of the bearing fault classifier across the sites; only weights travel (MQTT).

    `role: aggregator` in the cloud's scenario, `role: site` (with `site`) in a site's; both
    must name the same training settings (the runner writes the sites' copies).
    """

    role: Literal["aggregator", "site"] = "aggregator"
    site: str | None = None
    sites: tuple[str, ...] = ("site_a", "site_b")
    seed: int = 0
    rounds: int = Field(default=4, ge=1)
    local_epochs: int = Field(default=10, ge=1)
    hidden_units: int = Field(default=16, ge=2)
    runs_per_severity: int = Field(default=1, ge=1)
    run_duration_s: float = Field(default=2.0, gt=1.0)
    timeout_s: float = Field(default=60.0, gt=0)
    prefix: str = "testbed/fl"

    @model_validator(mode="after")
    def _site_named(self) -> FederatedSpec:
        if self.role == "site" and self.site not in self.sites:
            raise ValueError(f"a federated site role needs site: one of {list(self.sites)}")
        return self
