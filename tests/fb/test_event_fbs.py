"""Documented behaviour of the IEC 61499 event FBs (timers on the virtual clock)."""

from __future__ import annotations

import pytest

from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer

MS = 1_000_000


class Fired(Tracer):
    def __init__(self, fb_name: str) -> None:
        self.fb_name = fb_name
        self.events: list[tuple[str, dict[str, object]]] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        if fb.name == self.fb_name:
            decl = fb.FB_TYPE.interface.event_output(event)
            values = {v: fb.get(v) for v in (decl.with_vars if decl else ())}
            self.events.append((event, values))


class Net:
    """One FB under test on a virtual-clock resource; events in, fired events out."""

    def __init__(self, res: Resource, clock: VirtualClock, type_name: str) -> None:
        self.res = res
        self.clock = clock
        self.fb = res.create_fb("UT", type_name)
        self.fired = Fired("UT")
        res.add_tracer(self.fired)
        res.start()
        res.run_until_idle()

    def set(self, **values: object) -> None:
        for name, value in values.items():
            self.fb.set(name, value)
            self.res.parameters[("UT", name)] = value

    def fire(self, event: str, **values: object) -> list[str]:
        self.set(**values)
        start = len(self.fired.events)
        self.res.inject(f"UT.{event}")
        self.res.run_until_idle()
        return [e for e, _ in self.fired.events[start:]]

    def advance_ms(self, ms: float) -> list[str]:
        start = len(self.fired.events)
        self.clock.advance(int(ms * MS))
        return [e for e, _ in self.fired.events[start:]]

    def last(self) -> dict[str, object]:
        return self.fired.events[-1][1]


@pytest.fixture
def make(library: object) -> object:
    def build(type_name: str) -> Net:
        clock = VirtualClock()
        device = Device("t", library=library, clock=clock)  # type: ignore[arg-type]
        device.console = lambda _t: None
        return Net(device.create_resource("R"), clock, type_name)

    return build


def test_e_switch(make) -> None:  # type: ignore[no-untyped-def]
    """EI goes to EO1 when G is TRUE, EO0 otherwise."""
    n = make("E_SWITCH")
    assert n.fire("EI", G=True) == ["EO1"]
    assert n.fire("EI", G=False) == ["EO0"]


def test_e_permit(make) -> None:  # type: ignore[no-untyped-def]
    """EO only while PERMIT is TRUE."""
    n = make("E_PERMIT")
    assert n.fire("EI", PERMIT=False) == []
    assert n.fire("EI", PERMIT=True) == ["EO"]


def test_e_merge_split_select(make) -> None:  # type: ignore[no-untyped-def]
    """MERGE ORs events; SPLIT fires EO1 then EO2; SELECT passes the input chosen by G."""
    m = make("E_MERGE")
    assert m.fire("EI1") == ["EO"]
    assert m.fire("EI2") == ["EO"]
    s = make("E_SPLIT")
    assert s.fire("EI") == ["EO1", "EO2"]
    sel = make("E_SELECT")
    assert sel.fire("EI0", G=False) == ["EO"]
    assert sel.fire("EI1", G=False) == []
    assert sel.fire("EI1", G=True) == ["EO"]


def test_e_rend(make) -> None:  # type: ignore[no-untyped-def]
    """EO after both EI1 and EI2 in any order; R forgets the first one."""
    n = make("E_REND")
    assert n.fire("EI1") == []
    assert n.fire("EI1") == []
    assert n.fire("EI2") == ["EO"]
    assert n.fire("EI2") == []
    assert n.fire("R") == []
    assert n.fire("EI1") == []
    assert n.fire("EI2") == ["EO"]


def test_e_demux(make) -> None:  # type: ignore[no-untyped-def]
    """EI goes to EO<K>; K out of range fires nothing."""
    n = make("E_DEMUX")
    assert n.fire("EI", K=2) == ["EO2"]
    assert n.fire("EI", K=0) == ["EO0"]
    assert n.fire("EI", K=7) == []


def test_e_sr_and_e_rs(make) -> None:  # type: ignore[no-untyped-def]
    """Bistables fire EO only when Q changes."""
    for type_name in ("E_SR", "E_RS"):
        n = make(type_name)
        assert n.fire("S") == ["EO"]
        assert n.last() == {"Q": True}
        assert n.fire("S") == []
        assert n.fire("R") == ["EO"]
        assert n.last() == {"Q": False}
        assert n.fire("R") == []


def test_e_d_ff_and_e_t_ff(make) -> None:  # type: ignore[no-untyped-def]
    """D latch fires when Q changes on CLK; T flip-flop toggles on every CLK."""
    d = make("E_D_FF")
    assert d.fire("CLK", D=False) == []
    assert d.fire("CLK", D=True) == ["EO"]
    assert d.fire("CLK", D=True) == []
    assert d.fire("CLK", D=False) == ["EO"]
    t = make("E_T_FF")
    assert t.fire("CLK") == ["EO"]
    assert t.last() == {"Q": True}
    t.fire("CLK")
    assert t.last() == {"Q": False}


def test_edge_triggers(make) -> None:  # type: ignore[no-untyped-def]
    """R_TRIG fires on FALSE->TRUE of QI, F_TRIG on TRUE->FALSE."""
    r = make("E_R_TRIG")
    assert [r.fire("EI", QI=v) for v in (False, True, True, False, True)] == [
        [], ["EO"], [], [], ["EO"]]
    f = make("E_F_TRIG")
    assert [f.fire("EI", QI=v) for v in (False, True, True, False, False)] == [
        [], [], [], ["EO"], []]


def test_counters(make) -> None:  # type: ignore[no-untyped-def]
    """E_CTU/E_CTD/E_CTUD count with Q/QU/QD as documented and saturate at the bounds."""
    u = make("E_CTU")
    u.set(PV=2)
    u.fire("CU")
    assert u.last() == {"Q": False, "CV": 1}
    u.fire("CU")
    assert u.last() == {"Q": True, "CV": 2}
    assert u.fire("R") == ["RO"]
    assert u.last() == {"Q": False, "CV": 0}
    u.set(CV=65535)
    assert u.fire("CU") == []  # no wrap past 65535
    d = make("E_CTD")
    assert d.fire("CD") == []  # CV is 0: guard CV > 0 blocks
    assert d.fire("LD", PV=2) == ["LDO"]
    d.fire("CD")
    d.fire("CD")
    assert d.last() == {"Q": True, "CV": 0}
    ud = make("E_CTUD")
    ud.set(PV=1)
    assert ud.fire("CU") == ["CO"]
    assert ud.last() == {"QU": True, "CV": 1, "QD": False}
    ud.fire("CD")
    assert ud.last() == {"QU": False, "CV": 0, "QD": True}
    assert ud.fire("LD", PV=5) == ["LDO"]
    assert ud.last()["CV"] == 5


def test_e_cycle_is_periodic_without_drift(make) -> None:  # type: ignore[no-untyped-def]
    """E_CYCLE fires every DT after START until STOP, at exact multiples of DT."""
    n = make("E_CYCLE")
    n.fire("START", DT=100 * MS)
    assert n.advance_ms(99) == []
    assert n.advance_ms(1) == ["EO"]
    assert n.advance_ms(1000) == ["EO"] * 10
    assert n.clock.now_ns() == 1100 * MS
    n.fire("START", DT=1 * MS)  # a START while running changes nothing
    assert n.advance_ms(100) == ["EO"]
    n.fire("STOP")
    assert n.advance_ms(1000) == []


def test_e_delay_and_e_rdelay(make) -> None:  # type: ignore[no-untyped-def]
    """E_DELAY ignores START while running; E_RDELAY restarts; STOP cancels both."""
    d = make("E_DELAY")
    d.fire("START", DT=50 * MS)
    d.advance_ms(30)
    d.fire("START", DT=50 * MS)
    assert d.advance_ms(20) == ["EO"]
    d.fire("START", DT=50 * MS)
    d.fire("STOP")
    assert d.advance_ms(100) == []
    r = make("E_RDELAY")
    r.fire("START", DT=50 * MS)
    r.advance_ms(30)
    r.fire("START", DT=50 * MS)
    assert r.advance_ms(20) == []
    assert r.advance_ms(30) == ["EO"]


def test_e_train_table_and_n_table(make) -> None:  # type: ignore[no-untyped-def]
    """E_TRAIN fires N events DT apart with CV; E_TABLE/E_N_TABLE follow DT[i]."""
    t = make("E_TRAIN")
    t.fire("START", DT=10 * MS, N=3)
    assert t.advance_ms(100) == ["EO"] * 3
    assert [v["CV"] for _, v in t.fired.events] == [0, 1, 2]
    tab = make("E_TABLE")
    tab.fire("START", DT=[5 * MS, 10 * MS, 20 * MS, 0], N=3)
    assert tab.advance_ms(5) == ["EO"]
    assert tab.advance_ms(10) == ["EO"]
    assert tab.advance_ms(19) == []
    assert tab.advance_ms(1) == ["EO"]
    nt = make("E_N_TABLE")
    nt.fire("START", DT=[1 * MS, 1 * MS, 1 * MS, 1 * MS], N=4)
    assert nt.advance_ms(10) == ["EO0", "EO1", "EO2", "EO3"]


def test_e_stopwatch_measures_virtual_time(make) -> None:  # type: ignore[no-untyped-def]
    """TD is the clock time between START and STOP."""
    n = make("E_STOPWATCH")
    n.fire("START")
    n.advance_ms(250)
    assert n.fire("STOP") == ["EO"]
    assert n.last() == {"TD": 250 * MS}


def test_e_restart_order(library: object) -> None:
    """The resource's START FB fires COLD, then WARM after a restart, and STOP on stop."""
    device = Device("t", library=library, clock=VirtualClock())  # type: ignore[arg-type]
    res = device.create_resource("R")
    fired = Fired("START")
    res.add_tracer(fired)
    res.start()
    res.stop()
    res.start()
    assert [e for e, _ in fired.events] == ["COLD", "STOP", "WARM"]
