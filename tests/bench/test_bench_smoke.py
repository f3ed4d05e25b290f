"""Benchmarks run and count what they claim (no timing assertions: figures are for reports)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared_material import shared_path
from testbed.bench.baseline import deque_dispatch_rate
from testbed.bench.events import run_event_loop
from testbed.library import TypeLibrary


def test_event_loop_executes_the_expected_number_of_fb_events() -> None:
    """With OUTER.PV=2 one inner loop runs: 130001 calls, plus 2x(OUTER.CU, SW_OUT.EI), END."""
    boot_file = shared_path("bench", "event_loop_26M.fboot")
    executions, wall, cpu = run_event_loop(boot_file, 2, TypeLibrary.with_native_types())
    # an inner loop is 65000 x (INNER.CU + SW_IN.EI) + INNER.R; it runs OUTER.PV-1 times;
    # each outer count is OUTER.CU + SW_OUT.EI; the last one ends with END.REQ
    assert executions == (2 - 1) * (2 * 65000 + 1) + 2 * 2 + 1
    assert wall > 0
    assert cpu > 0


def test_baseline_counts_events() -> None:
    """The deque baseline reports a positive rate."""
    assert deque_dispatch_rate(events=10_000) > 0


@pytest.mark.slow
def test_bench_cli_prints_json_figures() -> None:
    """`testbed bench cycle` prints one JSON line per figure in DESIGN's format."""
    out = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "bench", "cycle", "--seconds", "0.5"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    figures = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    names = {f["figure"] for f in figures}
    assert {"lateness_p99_ms", "drift_ms"} <= names
    for f in figures:
        assert set(f) >= {"bench", "figure", "value", "unit", "baseline", "baseline_value",
                          "ratio"}
