"""pytest support: the `fb_network` fixture (loaded automatically as a pytest plugin).

    def test_counter(fb_network):
        net = fb_network("app.yaml")            # or .sys, .fboot, testbed.Application
        with net.record() as rec:
            net.inject("App.Counter.CU")
        assert rec.paths() == ["App.Counter.CUO"]

Networks run on the virtual clock unless `clock="real"`; they are closed after
the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.api import Application, Network, load

__all__ = ["fb_network"]

NetworkFactory = Callable[..., Network]


@pytest.fixture
def fb_network() -> Iterator[NetworkFactory]:
    """A loader for FB networks that closes every network it made at teardown."""
    made: list[Network] = []

    def factory(source: str | Path | Application, **kwargs: Any) -> Network:
        net = load(source, **kwargs)
        made.append(net)
        return net

    yield factory
    for net in made:
        net.close()
