"""Client configuration validation and the reconnect backoff schedule."""

from __future__ import annotations

import random
import threading

import pytest
from pydantic import ValidationError

from drivers.mqtt import (
    EmbeddedBroker,
    MqttClient,
    MqttClientConfig,
    ReconnectConfig,
    TlsConfig,
    backoff_delay_s,
)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    """Without jitter the delays double from the initial delay and stop at the maximum."""
    config = ReconnectConfig(initial_delay_s=0.5, max_delay_s=4.0, jitter=0.0)
    assert [backoff_delay_s(n, config) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay_s(10_000, config) == 4.0


def test_backoff_jitter_stays_within_its_band_and_varies() -> None:
    """With jitter 0.5 each delay lies in [ceiling/2, ceiling] and the draws differ."""
    config = ReconnectConfig(initial_delay_s=1.0, max_delay_s=8.0, jitter=0.5)
    rng = random.Random(7)
    draws = [backoff_delay_s(3, config, rng) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in draws)
    assert len(set(draws)) > 40


def test_config_rejects_unknown_fields_and_half_client_certificates() -> None:
    """Typos and a certificate without its key are refused, naming the field."""
    with pytest.raises(ValidationError, match="keepalive"):
        MqttClientConfig.model_validate({"keepalive": 5})
    with pytest.raises(ValidationError, match=r"cert_file and tls\.key_file"):
        TlsConfig(cert_file="client.pem")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="client_id"):
        MqttClientConfig(clean_session=False)
    with pytest.raises(ValidationError, match="frozen"):
        MqttClientConfig().port = 1  # type: ignore[misc]


async def test_client_leaves_no_threads_behind() -> None:
    """After aclose, the client's connect worker thread is gone."""
    before = set(threading.enumerate())
    async with (
        EmbeddedBroker() as broker,
        MqttClient(MqttClientConfig(port=broker.port)) as client,
    ):
        await client.wait_connected()
        assert any(t.name.startswith("mqtt-connect") for t in threading.enumerate())
    leftover = [t for t in set(threading.enumerate()) - before if t.name.startswith("mqtt-")]
    assert leftover == []
