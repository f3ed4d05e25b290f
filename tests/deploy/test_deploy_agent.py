"""Remote deployment end to end: cloud -> broker -> edge link -> deploy agent -> result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from deploy_testkit import broken_app, counter_app

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, MqttClientConfig, StoreConfig
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig
from drivers.mqtt.sparkplug import DataType, EdgeNodeConfig
from testbed.cloud import CloudConfig, CloudService, edge_control_metrics, sha256_hex
from testbed.cloud.protocol import DEPLOY_REQUEST
from testbed.deploy import ApplicationRunner, DeployAgent, ModelRegistry
from testbed.library import TypeLibrary


@pytest_asyncio.fixture
async def deployment(
    tmp_path: Path, library: TypeLibrary
) -> AsyncIterator[tuple[CloudService, DeployAgent, ApplicationRunner, ModelRegistry]]:
    async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as broker:
        cloud_config = CloudConfig(
            mqtt=MqttClientConfig(port=broker.port), host_id="cloud", db_path=tmp_path / "c.db"
        )
        link_config = EdgeLinkConfig(
            mqtt=MqttClientConfig(port=broker.port),
            node=EdgeNodeConfig(
                group_id="plant", edge_node_id="edge1", primary_host_id="cloud", data_qos=1
            ),
            store=StoreConfig(path=tmp_path / "e.db"),
        )
        models = ModelRegistry(tmp_path / "models")
        async with (
            CloudService(cloud_config) as cloud,
            EdgeLink(link_config, node_metrics=edge_control_metrics()) as link,
            ApplicationRunner(tmp_path / "apps", library) as runner,
            DeployAgent(link, runner, models) as agent,
        ):
            await link.wait_ready(5)
            yield cloud, agent, runner, models


async def test_application_apply_reject_and_rollback(
    deployment: tuple[CloudService, DeployAgent, ApplicationRunner, ModelRegistry],
) -> None:
    """The cloud deploys v1 and v2; a bad hash and a bad boot file fail cleanly; rollback to v1."""
    cloud, agent, runner, _ = deployment
    v1, v2 = counter_app(), counter_app(period="T#5ms")
    result = await cloud.wait_deploy_result(
        await cloud.deploy("plant", "edge1", "application", "line", "1.0", v1), 10
    )
    assert result.ok
    assert result.version == "1.0"
    result = await cloud.wait_deploy_result(
        await cloud.deploy("plant", "edge1", "application", "line", "2.0", v2), 10
    )
    assert result.ok
    running = runner.running("line")
    assert running is not None
    assert running.version == "2.0"
    bad_hash = await cloud.deploy(
        "plant", "edge1", "application", "line", "2.1", v1, sha256=sha256_hex(b"other")
    )
    result = await cloud.wait_deploy_result(bad_hash, 10)
    assert not result.ok
    assert result.error is not None
    assert "sha256 mismatch" in result.error
    assert result.version == "2.0"
    broken = await cloud.deploy("plant", "edge1", "application", "line", "3.0", broken_app())
    result = await cloud.wait_deploy_result(broken, 10)
    assert not result.ok
    assert "did not load" in (result.error or "")
    assert runner.running("line") == running  # the running application is untouched
    result = await cloud.wait_deploy_result(
        await cloud.rollback("plant", "edge1", "application", "line"), 10
    )
    assert result.ok
    assert result.version == "1.0"
    stats = agent.statistics()
    assert (stats.applied, stats.failed, stats.rolled_back) == (2, 2, 1)


async def test_model_install_and_rollback(
    deployment: tuple[CloudService, DeployAgent, ApplicationRunner, ModelRegistry],
) -> None:
    """Model files land in the registry by version; rollback re-activates the previous one."""
    cloud, _, _, models = deployment
    for version, data in (("1", b"model-one"), ("2", b"model-two")):
        request = await cloud.deploy("plant", "edge1", "model", "bearing", version, data)
        assert (await cloud.wait_deploy_result(request, 10)).ok
    active = models.active("bearing")
    assert active is not None
    assert active.path.read_bytes() == b"model-two"
    request = await cloud.rollback("plant", "edge1", "model", "bearing")
    assert (await cloud.wait_deploy_result(request, 10)).version == "1"
    active = models.active("bearing")
    assert active is not None
    assert active.version == "1"


async def test_malformed_request_is_counted(
    deployment: tuple[CloudService, DeployAgent, ApplicationRunner, ModelRegistry],
) -> None:
    """A Deploy/Request that is not a valid header is counted as malformed, not answered."""
    cloud, agent, _, _ = deployment
    await cloud.send_command("plant", "edge1", {DEPLOY_REQUEST: (DataType.STRING, "{nope")})
    for _ in range(250):
        if agent.statistics().malformed:
            break
        await asyncio.sleep(0.02)
    assert agent.statistics().malformed == 1
    assert agent.results == ()
