"""Federated learning as scenario parts: both roles derive one configuration from the spec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from testbed.scenario.cross_site_spec import FederatedSpec
from testbed.scenario.federated_part import federated_config


def test_both_roles_derive_the_same_training_configuration() -> None:
    """The aggregator's and a site's copy of the spec give one config (same data, seeds)."""
    spec = FederatedSpec(sites=("site_a", "site_b"), seed=11, rounds=3, runs_per_severity=1)
    site = spec.model_copy(update={"role": "site", "site": "site_b"})
    cloud_config, site_config = federated_config(spec), federated_config(site)
    assert cloud_config == site_config
    assert [s.name for s in cloud_config.sites] == ["site_a", "site_b"]
    assert cloud_config.rounds == 3
    assert cloud_config.seed == 11
    a, b = cloud_config.sites
    assert a.speed_rpm != b.speed_rpm  # non-IID operating points
    assert a.faults[0].fault != b.faults[0].fault  # and majority faults


def test_a_site_role_must_name_one_of_the_sites() -> None:
    """`role: site` without a known `site` is refused at validation."""
    with pytest.raises(ValidationError, match="site role needs site"):
        FederatedSpec(role="site", site="site_z")
    with pytest.raises(ValidationError, match="site role needs site"):
        FederatedSpec(role="site")
