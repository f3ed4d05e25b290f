"""EdgeLink's wire messages read by an independent decoder: Eclipse Tahu's sparkplug-payload."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.mqtt import (
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    MqttClient,
    MqttClientConfig,
    StoreConfig,
)
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig
from drivers.mqtt.sparkplug import (
    DataType,
    EdgeNodeConfig,
    MetricSpec,
    encode_host_state,
    message_id_uuid,
    state_topic,
)

NODE_DIR = Path(__file__).parent / "sparkplug" / "node"


@pytest.fixture(scope="module")
def tahu_ready() -> None:
    """Tahu's JS codec from the Sparkplug tests' node folder (npm ci if not there), or skip."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: Tahu sparkplug-payload cannot run")
    if (NODE_DIR / "node_modules" / "sparkplug-payload").is_dir():
        return
    support = NODE_DIR.parent / "sparkplug_test_support.py"
    spec = importlib.util.spec_from_file_location("edge_link_tahu_support", support)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reason = module.npm_ci()
    if reason is not None:
        pytest.skip(reason)


def tahu_decode(payload: bytes) -> Any:
    result = subprocess.run(
        ["node", "tahu_codec.js"],
        cwd=NODE_DIR,
        input=json.dumps({"op": "decode", "payload": base64.b64encode(payload).decode()}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _long(value: Any) -> Any:
    return int(value["$long"]) if isinstance(value, dict) and "$long" in value else value


@pytest.mark.usefixtures("tahu_ready")
async def test_replayed_ddata_decodes_with_tahu(tmp_path: Path) -> None:
    """A DDATA held for the primary host and replayed carries, for Tahu, isHistorical,
    the original timestamp, the alias and value, and the store id in the payload uuid."""
    async with (
        EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as broker,
        MqttClient(MqttClientConfig(port=broker.port)) as host,
    ):
        await host.wait_connected()
        data = await host.subscribe("spBv1.0/plant/DDATA/#", qos=1)
        config = EdgeLinkConfig(
            mqtt=MqttClientConfig(port=broker.port),
            node=EdgeNodeConfig(
                group_id="plant", edge_node_id="gw1", primary_host_id="scada", data_qos=1
            ),
            store=StoreConfig(path=tmp_path / "e.db"),
        )
        devices = {"tank": [MetricSpec("Level", DataType.DOUBLE, 0.0)]}
        async with EdgeLink(config, devices=devices) as link:
            stamp = 1_700_000_000_123
            store_id = await link.report("tank", {"Level": 0.5}, timestamp_ms=stamp)
            assert store_id is not None
            online = encode_host_state(True, int(time.time() * 1000))
            await host.publish(state_topic("scada"), online, qos=1, retain=True)
            message = await asyncio.wait_for(data.get(), 10)
            alias = link.node.alias_of("tank", "Level")
    got = await asyncio.to_thread(tahu_decode, message.payload)
    assert got["uuid"] == message_id_uuid(store_id)
    (metric,) = got["metrics"]
    assert metric["alias"] == alias or _long(metric["alias"]) == alias
    assert (metric["type"], metric["value"]) == ("Double", 0.5)
    assert metric["isHistorical"] is True
    assert _long(metric["timestamp"]) == stamp
