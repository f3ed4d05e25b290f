"""Federated roles in separate transports (as in separate processes): the same result."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from drivers.mqtt import EmbeddedBroker, MqttClientConfig
from testbed.ai.errors import FederatedError
from testbed.ai.federated import FederatedConfig, MqttTransport, build_data, run_federated
from testbed.ai.federated.data import site_data
from testbed.ai.federated.run import aggregate_then_score, run_site

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings(
        # amqtt 0.12 stopped right after its clients disconnect can drop the server side of a
        # connection unclosed; the ResourceWarnings are its, not ours
        r"ignore:Exception ignored in. <(socket\.socket|function (_SelectorTransport|"
        r"StreamWriter)\.__del__):pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(autouse=True)
def _collect_leaks_here() -> Iterator[None]:
    """Surface amqtt's leaked server streams inside the test that made them (filtered)."""
    yield
    gc.collect()


def test_site_data_is_the_sites_part_of_build_data() -> None:
    """One site's own simulation equals its share of the full simulation."""
    config = FederatedConfig.small(seed=3).model_copy(update={"rounds": 1})
    full = build_data(config)
    for i, site in enumerate(config.sites):
        alone = site_data(config, site.name)
        assert alone.runs == full.sites[i].runs
        assert (alone.blocks.features == full.sites[i].blocks.features).all()
    with pytest.raises(ValueError, match="unknown site"):
        site_data(config, "site_z")


async def test_aggregator_and_sites_in_their_own_transports_match_one_process() -> None:
    """An aggregator-only transport and one transport per site give the in-process result."""
    config = FederatedConfig.small(seed=7).model_copy(update={"rounds": 2})
    names = [s.name for s in config.sites]
    local = await run_federated(config)
    async with EmbeddedBroker() as broker:
        client = MqttClientConfig(port=broker.port)
        async with MqttTransport(client, names, aggregator=True, local_sites=[]) as cloud:
            site_transports = [MqttTransport(client, names, aggregator=False, local_sites=[n])
                               for n in names]
            for t in site_transports:
                await t.__aenter__()
            try:
                async with asyncio.TaskGroup() as tg:
                    result = tg.create_task(aggregate_then_score(config, cloud))
                    samples = [tg.create_task(run_site(config, n, t))
                               for n, t in zip(names, site_transports, strict=True)]
            finally:
                for t in site_transports:
                    await t.aclose()
    remote = result.result()
    assert remote.report.without_timings() == local.report.without_timings().model_copy(
        update={"transport": "mqtt"})
    assert all(s.result() > 0 for s in samples)
    assert site_transports[0].statistics().updates_sent == config.rounds + 1


async def test_a_site_only_transport_cannot_aggregate() -> None:
    """Roles not played here fail clearly; local sites must be among the sites."""
    with pytest.raises(FederatedError, match="not among"):
        MqttTransport(MqttClientConfig(port=1), ["site_a"], local_sites=["site_b"])
    async with EmbeddedBroker() as broker:
        names = ["site_a", "site_b"]
        async with MqttTransport(MqttClientConfig(port=broker.port), names, aggregator=False,
                                 local_sites=["site_a"]) as site:
            with pytest.raises(FederatedError, match="not open"):
                await site.send_global(0, b"x")
            with pytest.raises(FederatedError, match="unknown site"):
                await site.send_update(0, "site_b", b"x")
