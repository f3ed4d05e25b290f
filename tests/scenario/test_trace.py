"""Event traces: named output events with their time and pin values, written as CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

import testbed
from testbed.errors import ConfigError
from testbed.runtime.instance import FBInstance
from testbed.scenario.trace import EventTrace, TracePoint, parse_trace_point, read_trace


def test_trace_points_parse_and_bad_ones_are_config_errors() -> None:
    """`FB.EVENT(PIN,...)` names the event and the pins; anything else is a ConfigError."""
    assert parse_trace_point("Site.XPub.CNF(SD_1, QO)") == TracePoint("Site.XPub.CNF",
                                                                      ("SD_1", "QO"))
    assert parse_trace_point("A.B.IND") == TracePoint("A.B.IND", ())
    for bad in ("CNF", "A.B.CNF(SD_1", "A.B.CNF SD_1", ""):
        with pytest.raises(ConfigError, match="trace point"):
            parse_trace_point(bad)


def test_a_trace_records_each_watched_event_with_its_values(tmp_path: Path) -> None:
    """Three counts of an E_CTU give three rows (resource-clock time, CV 1..3); others ignored."""
    app = tmp_path / "count.yaml"
    app.write_text("name: T\nfbs:\n  Count: {type: E_CTU, parameters: {PV: 5}}\n"
                   "  Other: {type: E_CTU, parameters: {PV: 5}}\n"
                   "connections:\n  - Count.CUO -> Other.CU\n", encoding="utf-8")
    net = testbed.load(app, clock="virtual")
    try:
        res, fb, event = net.resolve("T.Count.CUO")
        assert isinstance(fb, FBInstance)
        trace = EventTrace({fb: {event: parse_trace_point("T.Count.CUO(CV,Q)")}})
        res.add_tracer(trace)
        start_ms = net.now_ms
        for _ in range(3):
            net.advance(250)
            net.inject("T.Count.CU")
            net.run_until_idle()
        res.remove_tracer(trace)
        net.inject("T.Count.CU")
        net.run_until_idle()
    finally:
        net.close()
    rows = trace.rows("T.Count.CUO")
    assert [int(str(r[1])) for r in rows] == [1, 2, 3]
    times = [int(str(r[0])) for r in rows]
    # stamped with the resource clock: virtual time here, 250 ms apart as advanced
    assert [t / 1e6 - start_ms for t in times] == pytest.approx([250.0, 500.0, 750.0])
    (written,) = trace.write(tmp_path / "trace")
    assert written.name == "T.Count.CUO.csv"
    back = read_trace(written)
    assert [r["CV"] for r in back] == ["1", "2", "3"]
    assert list(back[0]) == ["t_ns", "CV", "Q"]
    assert read_trace(tmp_path / "missing.csv") == []
