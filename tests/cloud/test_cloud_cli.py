"""`testbed cloud`: the primary host as a command against a real broker."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from drivers.mqtt import MosquittoBroker, MosquittoConfig, MqttClient, MqttClientConfig
from drivers.mqtt.sparkplug import decode_host_state, state_topic
from testbed.cli.cloud import broker_config
from testbed.cloud import CloudConfig, CloudService
from testbed.errors import ConfigError


def test_broker_url_is_parsed_with_credentials_and_tls() -> None:
    """mqtts URLs carry user, password and port; a bad scheme is a ConfigError naming the URL."""
    config = broker_config("mqtts://edge:secret@broker.local:8884")
    assert (config.host, config.port, config.username) == ("broker.local", 8884, "edge")
    assert config.password is not None
    assert config.password.get_secret_value() == "secret"
    assert config.tls is not None
    assert broker_config("mqtt://10.0.0.2").port == 1883
    with pytest.raises(ConfigError, match="http://x"):
        broker_config("http://x")


@pytest.mark.usefixtures("needs_mosquitto")
async def test_cloud_command_announces_state_and_stops(tmp_path: Path) -> None:
    """`testbed cloud --duration` publishes STATE online, runs, and prints its summary."""
    async with (
        MosquittoBroker() as broker,
        MqttClient(MqttClientConfig(port=broker.port)) as probe,
    ):
        port = broker.port
        await probe.wait_connected()
        states = await probe.subscribe(state_topic("cli-host"), qos=1)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "testbed.cli", "cloud",
            "--broker", f"mqtt://127.0.0.1:{port}", "--db", str(tmp_path / "c.db"),
            "--host-id", "cli-host", "--duration", "1.5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        online = await asyncio.wait_for(states.get(), 20)
        assert decode_host_state(online.payload).online
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert b"messages ingested" in out
    assert (tmp_path / "c.db").exists()


@pytest.mark.usefixtures("needs_mosquitto")
async def test_wrong_password_is_a_clear_config_error(tmp_path: Path) -> None:
    """A cloud service with a wrong password fails wait_connected with a ConfigError."""
    users = {"cloud": SecretStr("right")}
    async with MosquittoBroker(MosquittoConfig(users=users)) as broker:
        url = f"mqtt://cloud:wrong@127.0.0.1:{broker.port}"
        config = CloudConfig(mqtt=broker_config(url), host_id="h", db_path=tmp_path / "c.db")
        async with CloudService(config) as cloud:
            with pytest.raises(ConfigError, match="refused the connection"):
                await cloud.wait_connected(10)
            assert cloud.statistics().connected is False
