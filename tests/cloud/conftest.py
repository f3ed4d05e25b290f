"""Fixtures of the cloud tests: an embedded broker per test; mosquitto tests skip without it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, find_mosquitto


@pytest.fixture
def needs_mosquitto() -> None:
    """Skip, with a clear reason, when mosquitto is not installed."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")


@pytest_asyncio.fixture
async def embedded_broker() -> AsyncIterator[EmbeddedBroker]:
    """The zero-install broker (amqtt) on a free loopback port."""
    async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as broker:
        yield broker
