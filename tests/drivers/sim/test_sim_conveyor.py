"""Conveyor model: Poisson arrivals, conservation of items, photo-eyes, sorting, jams."""

from __future__ import annotations

import math
from collections import deque

from drivers.sim import ConveyorConfig, ConveyorModel, FaultSpec, PlantState


def _conserved(state: PlantState) -> bool:
    accounted = (
        state["items_passed"] + state["items_rejected"] + state["items_on_belt"]
        + state["infeed_waiting"] + state["items_lost"]
    )
    return accounted == state["items_arrived"]


def test_arrivals_follow_the_poisson_rate_and_items_are_conserved() -> None:
    """Arrivals over 600 s lie within 4 sigma of rate x time; every item is accounted for."""
    conveyor = ConveyorModel(ConveyorConfig(dt_s=0.05), seed=21)
    state = conveyor.run_for(600.0)
    expected = conveyor.config.arrival_rate_per_s * 600.0
    assert abs(state["items_arrived"] - expected) < 4 * math.sqrt(expected)
    assert _conserved(state)
    assert state["items_rejected"] == 0
    assert state["items_lost"] == 0
    assert state["items_inspected"] >= state["items_passed"]


def test_defect_rate_matches_its_probability() -> None:
    """The share of defective items that passed is close to the configured defect probability."""
    conveyor = ConveyorModel(ConveyorConfig(dt_s=0.05, arrival_rate_per_s=1.5,
                                            defect_probability=0.2),
                             seed=4)
    state = conveyor.run_for(600.0)
    share = state["defective_passed"] / state["items_passed"]
    n = state["items_passed"]
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)


def test_photo_eye_sees_every_item_once() -> None:
    """The exit photo-eye rises once per item leaving the belt."""
    conveyor = ConveyorModel(seed=2)
    rising, previous = 0, False
    for _ in range(20_000):
        blocked = bool(conveyor.step()["pe_exit"])
        rising += blocked and not previous
        previous = blocked
    assert conveyor.state()["items_passed"] > 50
    assert rising - conveyor.state()["items_passed"] in (0, 1)


def test_tracking_controller_rejects_exactly_the_defective_items() -> None:
    """A PLC-style tracker (inspection verdict FIFO, divert at pe_divert) sorts perfectly."""
    conveyor = ConveyorModel(ConveyorConfig(dt_s=0.02, defect_probability=0.3), seed=9)
    verdicts: deque[bool] = deque()
    last_inspected = 0
    previous_eye = False
    for _ in range(15_000):
        state = conveyor.step()
        if state["inspection_item_id"] != last_inspected:
            last_inspected = int(state["inspection_item_id"])
            verdicts.append(bool(state["inspection_defective"]))
        eye = bool(state["pe_divert"])
        if eye and not previous_eye:
            conveyor.set_input("diverter_extend", verdicts.popleft())
        previous_eye = eye
    final = conveyor.state()
    assert final["defective_rejected"] > 10
    assert final["defective_passed"] == 0
    assert final["good_rejected"] == 0
    assert _conserved(final)


def test_belt_jam_stops_items_and_draws_stall_current() -> None:
    """A belt jam stops the belt and the items on it, the motor stalls, and it resumes after."""
    conveyor = ConveyorModel(seed=3)
    conveyor.run_for(20.0)
    conveyor.add_fault(FaultSpec(kind="actuator_jam", target="belt", start_s=20.0, end_s=30.0))
    jammed = conveyor.step()
    positions = {item.item_id: item.position_m for item in conveyor.items()}
    assert jammed.real("belt_speed_m_s") < 0.01
    assert jammed.real("belt_motor_current_a") > 5.0
    conveyor.run_for(5.0)
    after = {item.item_id: item.position_m for item in conveyor.items()}
    assert {item_id: after[item_id] for item_id in positions} == positions
    resumed = conveyor.run_for(6.0)
    assert resumed.real("belt_speed_m_s") > 0.45
    assert resumed.real("belt_motor_current_a") < 3.0


def test_stopped_belt_fills_the_infeed_then_counts_losses() -> None:
    """With the belt stopped arrivals queue up to the infeed capacity; the rest are counted lost."""
    conveyor = ConveyorModel(ConveyorConfig(arrival_rate_per_s=2.0, initial_run=False), seed=5)
    state = conveyor.run_for(60.0)
    assert state["infeed_waiting"] == conveyor.config.infeed_capacity
    assert state["items_lost"] > 0
    assert state["items_on_belt"] == 1
    assert state.real("belt_motor_current_a") == 0.0
    assert _conserved(state)


def test_stuck_diverter_lets_items_pass() -> None:
    """A diverter jammed retracted rejects nothing even when commanded to extend."""
    conveyor = ConveyorModel(seed=6)
    conveyor.add_fault(FaultSpec(kind="actuator_jam", target="diverter"))
    conveyor.set_input("diverter_extend", True)
    state = conveyor.run_for(120.0)
    assert state["diverter_retracted"] is True
    assert state["items_rejected"] == 0
    assert state["items_passed"] > 20


def test_extended_diverter_rejects_everything() -> None:
    """With the diverter held extended every item reaching it goes to the reject bin."""
    conveyor = ConveyorModel(seed=6)
    conveyor.set_input("diverter_extend", True)
    state = conveyor.run_for(120.0)
    assert state["diverter_extended"] is True
    assert state["items_passed"] == 0
    assert state["items_rejected"] > 20
    assert state["items_rejected"] == state["defective_rejected"] + state["good_rejected"]


def test_inspection_measurement_separates_defects_but_overlaps_with_noise() -> None:
    """The gauge reads about 0 for good items and the defect size for defective ones, noisily."""
    conveyor = ConveyorModel(ConveyorConfig(dt_s=0.02, defect_probability=0.4,
                                            arrival_rate_per_s=1.5), seed=5)
    good: list[float] = []
    bad: list[float] = []
    last_inspected = 0
    for _ in range(20_000):
        state = conveyor.step()
        if state["inspection_item_id"] != last_inspected:
            last_inspected = int(state["inspection_item_id"])
            (bad if state["inspection_defective"] else good).append(
                float(state["inspection_measurement_mm"]))
    assert len(good) > 100
    assert len(bad) > 100
    assert abs(sum(good) / len(good)) < 0.1
    assert abs(sum(bad) / len(bad) - conveyor.config.defect_size_mm) < 0.2
    assert max(good) > 0.5 * conveyor.config.defect_size_mm  # noise makes some good items doubtful
    assert min(bad) < max(good)  # the classes overlap: a threshold has errors both ways


def test_inspection_measurement_leaves_the_other_streams_unchanged() -> None:
    """Arrivals and verdicts do not depend on the gauge's noise (its own random stream)."""
    quiet = ConveyorModel(ConveyorConfig(inspection_noise_mm=0.0), seed=3).run_for(120.0)
    noisy = ConveyorModel(ConveyorConfig(inspection_noise_mm=1.0), seed=3).run_for(120.0)
    for name in ("items_arrived", "items_inspected", "defective_passed", "belt_speed_m_s"):
        assert quiet[name] == noisy[name], name
