"""The Prometheus endpoint serves the recorder's live values and stops cleanly."""

from __future__ import annotations

import urllib.request

from testbed.metrics_endpoint import MetricsEndpoint, resource_statistics_source
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.scenario.metrics import MetricsRecorder


def test_endpoint_serves_counters_gauges_and_summaries() -> None:
    """A scrape shows counters, gauges and latency percentiles; closing joins the thread."""
    rec = MetricsRecorder()
    rec.count("messages_lost", 0)
    rec.gauge("uplink_backlog", 12)
    for v in (1.0, 2.0, 3.0):
        rec.sample("e2e_latency_ms", v)
    device = Device("edge", clock=VirtualClock())
    res = device.create_resource("R")
    res.create_fb("C", "E_CTU")
    res.start()
    res.inject("C.CU")
    res.run_until_idle()
    endpoint = MetricsEndpoint([rec.snapshot, resource_statistics_source(lambda: [device])])
    endpoint.start()
    try:
        with urllib.request.urlopen(endpoint.url, timeout=5) as response:
            body = response.read().decode()
    finally:
        endpoint.close()
    assert "testbed_uplink_backlog 12.0" in body
    assert "testbed_e2e_latency_ms_p99 3.0" in body
    assert "testbed_messages_lost 0.0" in body
    assert "testbed_edge_R_events_processed 1.0" in body
    assert endpoint._thread is None
