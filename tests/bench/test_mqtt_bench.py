"""`testbed bench mqtt` runs end to end and reports its figures (values are not judged here)."""

from __future__ import annotations

from testbed.bench.mqtt import run_mqtt_bench


def test_mqtt_bench_reports_every_figure() -> None:
    """A short run yields the throughput, latency and bytes figures with their baselines."""
    figures = {f.figure: f for f in run_mqtt_bench(messages=500, latency_s=0.5)}
    assert set(figures) == {
        "persisted_qos1_msgs_per_s",
        "client_qos1_msgs_per_s",
        "e2e_latency_p50_ms",
        "e2e_latency_p99_ms",
        "bytes_per_value_sparkplug_batched",
        "bytes_per_value_sparkplug_rbe",
    }
    assert figures["persisted_qos1_msgs_per_s"].ratio is not None
    assert figures["e2e_latency_p99_ms"].value >= figures["e2e_latency_p50_ms"].value
    # report by exception only removes values; batching shares topic and header
    rbe = figures["bytes_per_value_sparkplug_rbe"]
    batched = figures["bytes_per_value_sparkplug_batched"]
    assert rbe.value < batched.value < (batched.baseline_value or 0)
