"""Brokers for the MQTT tests: one mosquitto per session (skipped if not installed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.mqtt import MosquittoBroker, MosquittoConfig, find_mosquitto

MOSQUITTO_MISSING = (
    "mosquitto is not installed (apt-get install mosquitto): tests against a real broker skipped"
)



@pytest.fixture
def mosquitto_installed() -> None:
    """Skip the test, with a clear reason, when mosquitto is not installed."""
    if find_mosquitto() is None:
        pytest.skip(MOSQUITTO_MISSING)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mosquitto() -> AsyncIterator[MosquittoBroker]:
    """A plain mosquitto on a free loopback port, shared by the session's tests."""
    if find_mosquitto() is None:
        pytest.skip(MOSQUITTO_MISSING)
    async with MosquittoBroker(MosquittoConfig()) as broker:
        yield broker
