"""Fixtures for the Sparkplug tests: a real mosquitto broker and the Tahu JS codec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sparkplug_test_support import mosquitto_binary, npm_ci, running_mosquitto, tahu_available


@pytest.fixture
def broker_port(tmp_path: Path) -> Iterator[int]:
    """A fresh mosquitto on a free loopback port for one test (no retained state leaks)."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with running_mosquitto(binary, tmp_path) as port:
        yield port


@pytest.fixture(scope="session")
def tahu_codec() -> None:
    """Eclipse Tahu's sparkplug-payload installed by `npm ci` once per session, or skip."""
    reason = tahu_available() or npm_ci()
    if reason is not None:
        pytest.skip(reason)
