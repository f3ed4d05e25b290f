"""Bearing kinematics: defect frequencies of the CWRU SKF 6205 geometry."""

from __future__ import annotations

import pytest

from drivers.sim import SKF_6205, BearingFault, BearingGeometry, defect_frequencies, defect_orders


def test_skf_6205_orders_match_the_cwru_table() -> None:
    """The 6205 geometry gives the defect orders CWRU tabulates (BSF listed there as 2x BSF)."""
    orders = defect_orders(SKF_6205)
    assert orders.bpfi == pytest.approx(5.4152, abs=5e-4)
    assert orders.bpfo == pytest.approx(3.5848, abs=5e-4)
    assert orders.ftf == pytest.approx(0.3983, abs=5e-4)
    assert 2 * orders.bsf == pytest.approx(4.7135, abs=1e-3)


@pytest.mark.parametrize(
    ("rpm", "bpfo", "bpfi", "ftf", "bsf"),
    [(1797, 107.4, 162.2, 11.9, 70.6), (1730, 103.4, 156.1, 11.5, 68.0)],
)
def test_defect_frequencies_in_hz_at_cwru_speeds(
    rpm: float, bpfo: float, bpfi: float, ftf: float, bsf: float
) -> None:
    """At the CWRU shaft speeds the defect frequencies in Hz match the research table."""
    freqs = defect_frequencies(SKF_6205, rpm)
    assert freqs.bpfo == pytest.approx(bpfo, abs=0.1)
    assert freqs.bpfi == pytest.approx(bpfi, abs=0.1)
    assert freqs.ftf == pytest.approx(ftf, abs=0.1)
    assert freqs.bsf == pytest.approx(bsf, abs=0.1)


def test_defect_frequencies_scale_with_speed_and_follow_identities() -> None:
    """BPFO + BPFI equals the ball count in orders; frequencies are proportional to speed."""
    orders = defect_orders(SKF_6205)
    assert orders.bpfo + orders.bpfi == pytest.approx(SKF_6205.n_balls)
    assert orders.bpfo == pytest.approx(SKF_6205.n_balls * orders.ftf)
    slow, fast = defect_frequencies(SKF_6205, 900), defect_frequencies(SKF_6205, 1800)
    assert fast.bpfo == pytest.approx(2 * slow.bpfo)


def test_contact_angle_shrinks_the_ball_to_pitch_ratio() -> None:
    """A 90-degree contact angle removes the ratio term: BPFO = BPFI = n/2."""
    geometry = BearingGeometry(n_balls=8, ball_diameter_in=0.3, pitch_diameter_in=1.5,
                               contact_angle_deg=90.0)
    orders = defect_orders(geometry)
    assert orders.bpfo == pytest.approx(4.0)
    assert orders.bpfi == pytest.approx(4.0)


def test_impact_rate_per_fault_location() -> None:
    """Outer race hits at BPFO, inner race at BPFI, a ball defect at 2 x BSF."""
    freqs = defect_frequencies(SKF_6205, 1797)
    assert freqs.for_fault(BearingFault.OUTER_RACE) == freqs.bpfo
    assert freqs.for_fault(BearingFault.INNER_RACE) == freqs.bpfi
    assert freqs.for_fault(BearingFault.BALL) == 2 * freqs.bsf
