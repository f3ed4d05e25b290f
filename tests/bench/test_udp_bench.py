"""The deploy benchmark's UDP round-trip figures are produced with a same-run baseline."""

from __future__ import annotations

import pytest

from testbed.bench.udp import run_udp_bench
from testbed.errors import BenchmarkError


def test_udp_bench_reports_p50_p99_against_asyncio_echo() -> None:
    """run_udp_bench gives udp_roundtrip_p50/p99/mean with positive values and baselines."""
    figures = {f.figure: f for f in run_udp_bench(round_trips=200, rounds=2)}
    assert set(figures) == {"udp_roundtrip_p50_ms", "udp_roundtrip_p99_ms",
                            "udp_roundtrip_mean_ms"}
    for f in figures.values():
        assert f.bench == "deploy"
        assert f.value > 0
        assert f.baseline_value is not None
        assert f.baseline_value > 0
    assert figures["udp_roundtrip_p99_ms"].value >= figures["udp_roundtrip_p50_ms"].value
    assert "2 alternating rounds of 100 round trips" in (figures["udp_roundtrip_p50_ms"].note
                                                         or "")
    assert "200 round trips per side" in (figures["udp_roundtrip_mean_ms"].note or "")


@pytest.mark.parametrize(("round_trips", "rounds"), [(10, 1), (1000, 11), (500, 0)])
def test_udp_bench_needs_enough_round_trips_per_round(round_trips: int, rounds: int) -> None:
    """Fewer than 100 round trips per round cannot give a p99: BenchmarkError."""
    with pytest.raises(BenchmarkError):
        run_udp_bench(round_trips=round_trips, rounds=rounds)
