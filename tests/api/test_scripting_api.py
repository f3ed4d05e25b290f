"""The public scripting API: load, inject, record, read, write, advance, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

import testbed
from testbed.errors import ConfigError
from testbed.testing import NetworkFactory

REPO = Path(__file__).resolve().parents[2]


def counter_app() -> testbed.Application:
    return (testbed.Application("App")
            .fb("Clock", "E_CYCLE", DT=100_000_000)
            .fb("Counter", "E_CTU", PV=3)
            .fb("Gate", "E_SWITCH")
            .connect("START.COLD", "Clock.START")
            .connect("Clock.EO", "Counter.CU")
            .connect("Counter.CUO", "Gate.EI")
            .connect("Counter.Q", "Gate.G")
            .connect("Gate.EO1", "Clock.STOP"))


def test_inject_record_read(fb_network: NetworkFactory) -> None:
    """inject runs to quiescence; record lists fired events with their WITH values."""
    net = fb_network(counter_app())
    with net.record() as rec:
        net.inject("App.Counter.CU")
    assert rec.events[0] == testbed.FiredEvent("App.Counter.CUO", {"Q": False, "CV": 1}, 0)
    assert rec.paths() == ["App.Counter.CUO", "App.Gate.EO0"]
    assert net.read("App.Counter.CV") == 1


def test_virtual_clock_advance_is_deterministic(fb_network: NetworkFactory) -> None:
    """advance(ms) runs timers in order; the cycle stops itself when the count is reached."""
    net = fb_network(counter_app())
    with net.record() as rec:
        net.advance(1000)
    cuo = [e for e in rec.events if e.path == "App.Counter.CUO"]
    assert [e.values["CV"] for e in cuo] == [1, 2, 3]
    assert [e.time_ns // 1_000_000 for e in cuo] == [100, 200, 300]
    assert net.read("App.Counter.Q") is True


def test_write_sets_parameters_with_iec_semantics(fb_network: NetworkFactory) -> None:
    """write() coerces to the variable's type (wrap) and accepts IEC literal text."""
    net = fb_network(counter_app())
    net.write("App.Counter.PV", 70000)
    assert net.read("App.Counter.PV") == 70000 % 65536
    net.write("App.Clock.DT", "T#250ms")
    assert net.read("App.Clock.DT") == 250_000_000


def test_unknown_paths_raise_path_error_with_nearest_names(fb_network: NetworkFactory) -> None:
    """PathError is a KeyError and names the nearest existing names."""
    net = fb_network(counter_app())
    with pytest.raises(testbed.PathError, match=r"App\.Counter"):
        net.read("App.Countr.CV")
    with pytest.raises(KeyError, match="CV"):
        net.read("App.Counter.CVV")


def test_fboot_paths_are_fb_names(fb_network: NetworkFactory) -> None:
    """A .fboot network is addressed by the FB names the file creates."""
    net = fb_network(REPO / "examples" / "hello.fboot")
    net.device.console = lambda _t: None
    with net.record() as rec:
        net.advance(600)
    assert net.read("Counter.CV") == 5
    assert "CountReached5.CNF" in rec.paths()
    assert net.device.test_report.failed == 0


def test_yaml_application(tmp_path: Path, fb_network: NetworkFactory) -> None:
    """A YAML application loads; parameters are IEC literals."""
    app = tmp_path / "app.yaml"
    app.write_text(
        "name: Blinky\n"
        "fbs:\n"
        "  Clock: {type: E_CYCLE, parameters: {DT: T#50ms}}\n"
        "  Toggle: E_T_FF\n"
        "connections:\n"
        "  - START.COLD -> Clock.START\n"
        "  - Clock.EO -> Toggle.CLK\n", encoding="utf-8")
    net = fb_network(app)
    net.advance(150)
    assert net.read("Blinky.Toggle.Q") is True


def test_yaml_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """A bad YAML application fails with file:line: field."""
    app = tmp_path / "bad.yaml"
    app.write_text("name: X\nfbs:\n  A: {type: E_CTU, bogus: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: fbs\.A"):
        testbed.load(app)


async def test_sync_calls_work_inside_async_tests(fb_network: NetworkFactory) -> None:
    """The virtual-clock API needs no event loop of its own (usable in pytest-asyncio)."""
    net = fb_network(counter_app())
    net.advance(250)
    assert net.read("App.Counter.CV") == 2


async def test_real_clock_network_with_async_twins() -> None:
    """On the real clock, `async with` runs the device; ainject/aadvance drive it."""
    net = testbed.load(counter_app(), clock="real")
    async with net:
        await net.ainject("App.Counter.R")
        await net.aadvance(350)
        assert net.read("App.Counter.CV") >= 2


async def test_recording_waits_for_events_on_the_real_clock() -> None:
    """Recording.wait_for returns once an event fired often enough (or raises on timeout)."""
    net = testbed.load(counter_app(), clock="real", start=False)
    async with net:
        with net.record() as rec:
            net.device.start()
            fired = await rec.wait_for("App.Counter.CUO", count=3, timeout_s=5)
            assert [e.values["CV"] for e in fired] == [1, 2, 3]
            with pytest.raises(testbed.TestbedError, match="fired"):
                await rec.wait_for("App.Gate.EO1", count=2, timeout_s=0.5)
