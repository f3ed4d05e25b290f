"""The smart-factory scenario's ST blocks: TRACKER (item FIFOs per belt segment) and
DIVERT_DECIDE (classify at inspection, set the diverter on arrival), on the virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import testbed
from testbed.api import Network

TYPES = Path(__file__).resolve().parents[2] / "scenarios" / "smart-factory" / "types"
SAMPLE_MS = 20
"""The sensor poll's period: each sample advances the virtual clock by it."""

APP = """name: L
fbs:
  Track:
    type: TRACKER
    parameters: {MIN_TRAVEL: T#60ms, MAX_TRAVEL: T#400ms, MIN_EXIT: T#60ms, MAX_EXIT: T#400ms}
  Decide: {type: DIVERT_DECIDE, parameters: {THRESHOLD: 0.8}}
connections:
  - Track.INSPECTED -> Decide.INSPECT
  - Track.INSP_ID -> Decide.ID
  - Track.MEAS -> Decide.MEAS
  - Track.ARRIVED -> Decide.ARRIVE
  - Track.ARR_ID -> Decide.ARR_ID
  - Track.ARR_KNOWN -> Decide.KNOWN
  - Decide.PASS -> Track.PASS
  - Decide.PASS_ID -> Track.PASS_ID
"""


@dataclass
class Line:
    """Drives the tracker with sensor samples and collects what the network emitted."""

    net: Network
    acts: list[tuple[int, bool]]
    decided: list[tuple[int, float, bool]]
    exits: list[tuple[int, bool]]

    def sample(self, *, ok: bool = True, entry: bool = False, divert: bool = False,
               exit_: bool = False, item: int = 0, meas_raw: int = 0) -> None:
        n = self.net
        n.advance(SAMPLE_MS)
        for pin, value in (("OK", ok), ("PE_ENTRY", entry), ("PE_DIVERT", divert),
                           ("PE_EXIT", exit_), ("ID_HI", item >> 16), ("ID_LO", item & 0xFFFF),
                           ("MEAS_RAW", meas_raw)):
            n.write(f"L.Track.{pin}", value)
        with n.record() as rec:
            n.inject("L.Track.REQ")
        for e in rec.events:
            if e.path == "L.Decide.ACT":
                self.acts.append((int(e.values["ACT_ID"]), bool(e.values["EXTEND"])))
            elif e.path == "L.Decide.DECIDED":
                self.decided.append((int(e.values["ITEM"]), float(e.values["VALUE"]),
                                     bool(e.values["REJECT"])))
            elif e.path == "L.Track.EXITED":
                self.exits.append((int(e.values["EXIT_ID"]), bool(e.values["EXIT_KNOWN"])))

    def idle(self, count: int, **kw: object) -> None:
        for _ in range(count):
            self.sample(**kw)  # type: ignore[arg-type]

    def pulse(self, eye: str, **kw: object) -> None:
        """One item passing a photo-eye: blocked for one sample, then clear."""
        self.sample(**{eye: True}, **kw)  # type: ignore[arg-type]
        self.sample(**kw)  # type: ignore[arg-type]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    app = tmp_path / "line.yaml"
    app.write_text(APP, encoding="utf-8")
    net = testbed.load(app, clock="virtual", types=[TYPES])
    try:
        yield Line(net, [], [], [])
    finally:
        net.close()


def test_items_are_classified_at_inspection_and_diverted_on_arrival(line: Line) -> None:
    """Item 1 (0.2 mm) passes, item 2 (1.5 mm) is rejected, item 3 (-0.3 mm, signed) passes."""
    for _ in range(3):
        line.pulse("entry")
    readings = {1: 20, 2: 150, 3: 65536 - 30}
    for item in (1, 2, 3):
        line.sample(item=item, meas_raw=readings[item])
        line.idle(1, item=item, meas_raw=readings[item])
    assert line.decided == [(1, pytest.approx(0.2), False), (2, pytest.approx(1.5), True),
                            (3, pytest.approx(-0.3), False)]
    line.idle(3, item=3)
    for _ in range(3):
        line.pulse("divert", item=3)
    assert line.acts == [(1, False), (2, True), (3, False)]
    line.idle(3, item=3)
    line.pulse("exit_", item=3)
    line.pulse("exit_", item=3)
    assert line.exits == [(1, True), (3, True)]  # the rejected item 2 never reaches the exit
    assert line.net.read("L.Track.MISMATCHED") == 0
    assert line.net.read("L.Decide.REJECTS") == 1


def test_an_item_arriving_too_soon_after_an_inspection_is_untracked_and_rejected(
        line: Line) -> None:
    """An arrival sooner than MIN_TRAVEL after an inspection cannot be that item: fail safe."""
    line.pulse("entry")
    line.sample(item=1, meas_raw=0)
    line.pulse("divert", item=1)  # 2 samples after inspection < MIN_TRAVEL
    assert line.acts == [(0, True)]
    assert line.net.read("L.Track.UNTRACKED") == 1
    line.idle(3, item=1)
    line.pulse("divert", item=1)  # now item 1 itself arrives, still known
    assert line.acts[-1] == (1, False)


def test_lost_samples_flush_the_fifos(line: Line) -> None:
    """After the sensor poll failed, IDs in flight are dropped, not matched to wrong items."""
    line.pulse("entry")
    line.sample(item=1, meas_raw=200)
    line.idle(2, ok=False, item=1)
    line.idle(4, item=1)
    line.pulse("divert", item=1)
    assert line.acts == [(0, True)]
    assert line.net.read("L.Track.FLUSHED") == 1


def test_ids_too_old_at_the_diverter_are_dropped(line: Line) -> None:
    """An item that passed the eye unseen (its ID older than MAX_TRAVEL) does not shift the
    IDs behind it onto the wrong items."""
    line.pulse("entry")
    line.pulse("entry", item=0)
    line.sample(item=1, meas_raw=200)
    line.idle(20, item=1)
    line.sample(item=2, meas_raw=0)
    line.idle(4, item=2)
    line.pulse("divert", item=2)
    assert line.acts == [(2, False)]
    assert line.net.read("L.Track.FLUSHED") == 1


def test_station_ids_resynchronise_the_entry_fifo(line: Line) -> None:
    """A station ID that skips an entered item counts one mismatch and tracking goes on."""
    line.pulse("entry")
    line.pulse("entry")
    line.sample(item=2, meas_raw=0)  # item 1 vanished between entry and inspection
    assert line.net.read("L.Track.MISMATCHED") == 0  # 2 was entered: found, 1 dropped
    line.sample(item=5, meas_raw=0)  # never entered
    assert line.net.read("L.Track.MISMATCHED") == 1
    assert [d[0] for d in line.decided] == [2, 5]


def _shipped_parameters() -> dict[str, dict[str, object]]:
    """TRACKER and DIVERT_DECIDE parameters as the scenario's app.yaml sets them."""
    app = yaml.safe_load((TYPES.parent / "app.yaml").read_text(encoding="utf-8"))
    return {name: app["fbs"][name]["parameters"] for name in ("Track", "Decide")}


def test_tracker_and_decider_sort_the_simulated_conveyor(tmp_path: Path) -> None:
    """Closed loop on the conveyor model (20 ms samples on the virtual clock, commands one
    sample late, the shipped parameters): every item tracked by its ID, defects rejected."""
    from drivers.sim import ConveyorConfig, ConveyorModel

    loop = yaml.safe_load(APP)
    for name, parameters in _shipped_parameters().items():
        loop["fbs"][name]["parameters"] = parameters
    app = tmp_path / "loop.yaml"
    app.write_text(yaml.safe_dump(loop), encoding="utf-8")
    net = testbed.load(app, clock="virtual", types=[TYPES])
    model = ConveyorModel(ConveyorConfig(dt_s=0.01, arrival_rate_per_s=1.2,
                                         defect_probability=0.3), seed=8)
    command: bool | None = None
    decided: list[int] = []
    try:
        for _ in range(4000):  # 80 s of belt
            if command is not None:
                model.set_input("diverter_extend", command)
                command = None
            model.step()
            state = model.step()
            net.advance(SAMPLE_MS)
            item = int(state["inspection_item_id"])
            for pin, value in (("OK", True), ("PE_ENTRY", state["pe_entry"]),
                               ("PE_DIVERT", state["pe_divert"]), ("PE_EXIT", state["pe_exit"]),
                               ("ID_HI", item >> 16), ("ID_LO", item & 0xFFFF),
                               ("MEAS_RAW", round(state["inspection_measurement_mm"] * 100)
                                & 0xFFFF)):
                net.write(f"L.Track.{pin}", value)
            with net.record() as rec:
                net.inject("L.Track.REQ")
            for e in rec.events:
                if e.path == "L.Decide.ACT":
                    command = bool(e.values["EXTEND"])
                elif e.path == "L.Decide.DECIDED":
                    decided.append(int(e.values["ITEM"]))
        final = model.state()
        assert net.read("L.Track.MISMATCHED") == 0
        assert net.read("L.Track.UNTRACKED") == 0
        assert net.read("L.Track.FLUSHED") == 0
        # the exit eye sits before the belt's end: at most one item between them
        assert net.read("L.Track.EXITED_N") - final["items_passed"] in (0, 1)
    finally:
        net.close()
    assert decided == list(range(1, len(decided) + 1))  # every item, by its own ID, in order
    defective = final["defective_rejected"] + final["defective_passed"]
    good_out = final["items_passed"] - final["defective_passed"]
    assert defective > 15
    assert final["defective_rejected"] / defective >= 0.8  # the gauge's recall
    assert final["good_rejected"] <= 0.05 * (good_out + final["good_rejected"])


WATCH_APP = """name: W
fbs:
  Watch: {type: DIVERTER_WATCH, parameters: {LIMIT: 3}}
connections: []
"""


def test_diverter_watch_raises_a_fault_when_the_end_switch_does_not_follow(
        tmp_path: Path) -> None:
    """A confirmed command the end switch does not follow raises FAULT after LIMIT samples;
    it clears when the switch matches; unconfirmed writes and lost samples do not count."""
    app = tmp_path / "watch.yaml"
    app.write_text(WATCH_APP, encoding="utf-8")
    net = testbed.load(app, clock="virtual", types=[TYPES])
    changes: list[tuple[bool, int]] = []

    def inject(event: str, **pins: object) -> None:
        for pin, value in pins.items():
            net.write(f"W.Watch.{pin}", value)
        with net.record() as rec:
            net.inject(f"W.Watch.{event}")
        changes.extend((bool(e.values["FAULT"]), int(e.values["FAULTS"]))
                       for e in rec.events if e.path == "W.Watch.CHANGED")

    def sample(extended: bool, *, ok: bool = True) -> None:
        inject("REQ", OK=ok, EXTENDED=extended, RETRACTED=not extended)

    try:
        inject("CONFIRM", CMD=True, TAKEN=True)
        for _ in range(2):
            sample(extended=False)  # the stroke takes a while: no fault yet
        sample(extended=True)
        inject("CONFIRM", CMD=False, TAKEN=False)  # a write the PLC did not take
        for _ in range(5):
            sample(extended=True)  # still where the PLC was last told: no fault
        inject("CONFIRM", CMD=False, TAKEN=True)
        for _ in range(3):
            sample(extended=True)  # retract confirmed, still extended: LIMIT reached
        sample(extended=True, ok=False)
        assert changes == []
        sample(extended=True)
        assert changes == [(True, 1)]
        sample(extended=False)
        assert changes == [(True, 1), (False, 1)]
    finally:
        net.close()
