"""Field benchmarks run end to end and count what they claim (no timing assertions)."""

from __future__ import annotations

import pytest

from testbed.bench.field import run_loop_bench, run_modbus_bench

pytestmark = pytest.mark.timeout(120)


def test_modbus_bench_proves_coalescing_and_reports_both_sides() -> None:
    """500 registers over a 1,000-register span poll in 8 requests; both rates are measured."""
    figures = {f.figure: f for f in run_modbus_bench(seconds=0.9)}
    assert figures["requests_per_cycle"].value == 8
    rate = figures["requests_per_s"]
    assert rate.value > 0
    assert rate.baseline_value is not None
    assert rate.baseline_value > 0


def test_loop_bench_closes_the_loop_and_states_the_publishing_interval() -> None:
    """Counter changes come back through OPC UA -> FBs -> Modbus; the note states the interval."""
    figures = {f.figure: f for f in run_loop_bench(seconds=1.0)}
    p99 = figures["closed_loop_p99_ms"]
    assert p99.value > 0
    assert p99.note is not None
    assert "publishing interval 1 ms" in p99.note
    assert figures["closed_loop_p50_ms"].value <= p99.value
