"""TLS, credentials and the last will, against real mosquitto brokers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from drivers.errors import SecurityError
from drivers.mqtt import (
    ClientState,
    MosquittoBroker,
    MosquittoConfig,
    MqttClient,
    MqttClientConfig,
    TlsConfig,
    generate_test_pki,
)

pytestmark = pytest.mark.usefixtures("mosquitto_installed")

CHILD = Path(__file__).with_name("mqtt_child.py")


async def test_tls_with_ca_and_client_certificate() -> None:
    """A client trusting the CA and presenting a client certificate exchanges messages over TLS."""
    async with MosquittoBroker(MosquittoConfig(tls=True)) as broker:
        pki = broker.pki
        tls = TlsConfig(ca_file=pki.ca_cert, cert_file=pki.client_cert, key_file=pki.client_key)
        config = MqttClientConfig(port=broker.tls_port, tls=tls, protocol="5")
        async with MqttClient(config) as client:
            await client.wait_connected()
            subscription = await client.subscribe("tls/#", qos=1)
            for index in range(5):
                await (await client.publish(f"tls/{index}", b"secret", qos=1)).acked
            received = [await asyncio.wait_for(subscription.get(), 5) for _ in range(5)]
            assert [m.topic for m in received] == [f"tls/{i}" for i in range(5)]


async def test_tls_without_client_certificate_is_refused() -> None:
    """A broker requiring client certificates refuses a client without one (security error)."""
    async with MosquittoBroker(MosquittoConfig(tls=True)) as broker:
        config = MqttClientConfig(port=broker.tls_port, tls=TlsConfig(ca_file=broker.pki.ca_cert))
        async with MqttClient(config) as client:
            with pytest.raises(SecurityError):
                await client.wait_connected(timeout_s=5)
            assert client.statistics().security_failures == 1


async def test_untrusted_server_certificate_is_rejected(tmp_path: Path) -> None:
    """A server certificate from a CA the client does not trust fails with SecurityError."""
    other = generate_test_pki(tmp_path / "other", name="other")
    async with MosquittoBroker(MosquittoConfig(tls=True)) as broker:
        tls = TlsConfig(
            ca_file=other.ca_cert, cert_file=other.client_cert, key_file=other.client_key
        )
        async with MqttClient(MqttClientConfig(port=broker.tls_port, tls=tls)) as client:
            with pytest.raises(SecurityError, match="certificate"):
                await client.wait_connected(timeout_s=5)
            stats = client.statistics()
            assert stats.state is ClientState.FAILED
            assert stats.security_failures == 1
            assert stats.connects == 0


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_wrong_password_is_rejected(protocol: str) -> None:
    """A wrong password fails fast with a SecurityError naming the refusal; the right one works."""
    users = {"edge": SecretStr("right-password")}
    async with MosquittoBroker(MosquittoConfig(users=users)) as broker:
        wrong = MqttClientConfig(
            port=broker.port, protocol=protocol, username="edge", password="wrong"  # type: ignore[arg-type]
        )
        async with MqttClient(wrong) as client:
            with pytest.raises(SecurityError, match="refused"):
                await client.wait_connected(timeout_s=5)
            stats = client.statistics()
            assert stats.security_failures == 1
            assert stats.state is ClientState.FAILED
        right = MqttClientConfig(
            port=broker.port, protocol=protocol, username="edge", password="right-password"  # type: ignore[arg-type]
        )
        async with MqttClient(right) as client:
            await client.wait_connected()
            assert client.statistics().security_failures == 0


async def test_last_will_is_delivered_when_the_client_dies(mosquitto: MosquittoBroker) -> None:
    """When a client process is SIGKILLed, the broker publishes its last will to subscribers."""
    async with MqttClient(MqttClientConfig(port=mosquitto.port)) as watcher:
        await watcher.wait_connected()
        subscription = await watcher.subscribe("will/child", qos=1)
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), "will", str(mosquitto.port), "will/child",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), 15)
            assert line.strip() == b"connected"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(subscription.get(), 0.2)  # no will while it lives
        finally:
            child.kill()
            await child.wait()
        message = await asyncio.wait_for(subscription.get(), 10)
        assert message.payload == b"dead"


async def test_polite_close_sends_no_will(mosquitto: MosquittoBroker) -> None:
    """A client that closes normally (DISCONNECT) does not trigger its last will."""
    from drivers.mqtt import WillConfig

    async with MqttClient(MqttClientConfig(port=mosquitto.port)) as watcher:
        await watcher.wait_connected()
        subscription = await watcher.subscribe("will/polite", qos=1)
        config = MqttClientConfig(
            port=mosquitto.port, will=WillConfig(topic="will/polite", payload=b"dead")
        )
        async with MqttClient(config) as client:
            await client.wait_connected()
        marker = await watcher.publish("will/polite", b"marker", qos=1)
        await marker.acked
        assert (await asyncio.wait_for(subscription.get(), 5)).payload == b"marker"
