"""The deploy benchmark deploys what it claims through a real second process (no timing checks)."""

from __future__ import annotations

import pytest

from testbed.bench.deploy import (
    deploy_requests,
    measure_deploy_in_process,
    measure_deploy_via_socket,
)

pytestmark = pytest.mark.timeout(60)


def test_deploy_requests_shape() -> None:
    """A resource, n FBs, n parameters, a chain of n connections and START."""
    requests = deploy_requests(5)
    assert len(requests) == 1 + 5 + 5 + 5 + 1
    assert requests[0][0] == ""
    assert 'Action="START"' in requests[-1][1]
    assert len({xml.split('"')[1] for _dest, xml in requests}) == len(requests)  # unique IDs


def test_socket_deploy_runs_the_chain_to_its_end() -> None:
    """Deploying through `testbed boot -c` returns once the COLD event reached the last FB."""
    assert measure_deploy_via_socket(20, timeout_s=30) > 0


def test_in_process_baseline_runs() -> None:
    """The in-process baseline executes the same deployment and runs the chain."""
    assert measure_deploy_in_process(20) > 0
