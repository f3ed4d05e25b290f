"""A Prometheus endpoint (`prometheus-client`) for live metrics during `run` and `serve`.

Sources are callables returning `name -> number` (or a percentile summary object
with `p50/p99/count`); each scrape reads them afresh, so nothing is copied on the
hot path. The HTTP server runs in prometheus-client's thread, owned here: started
on enter, shut down and joined on exit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import structlog

__all__ = ["MetricsEndpoint", "MetricsSource"]

log = structlog.get_logger(__name__)

MetricsSource = Callable[[], Mapping[str, object]]
_NAME = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(name: str) -> str:
    return "testbed_" + _NAME.sub("_", name)


class _Collector:
    def __init__(self, sources: list[MetricsSource]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:  # prometheus Metric families (untyped library)
        from prometheus_client.core import GaugeMetricFamily

        seen: set[str] = set()
        for source in self.sources:
            try:
                values = source()
            except Exception as exc:  # a failing source must not break the scrape
                log.warning("metrics_source_failed", error=str(exc))
                continue
            for name, value in values.items():
                base = _metric_name(name)
                parts: dict[str, float] = {}
                if isinstance(value, bool | int | float):
                    parts[base] = float(value)
                else:
                    for q in ("p50", "p90", "p99", "max", "count"):
                        v = getattr(value, q, None)
                        if isinstance(v, int | float):
                            parts[f"{base}_{q}"] = float(v)
                for metric, number in parts.items():
                    if metric in seen:
                        continue
                    seen.add(metric)
                    family = GaugeMetricFamily(metric, f"testbed metric {name}")
                    family.add_metric([], number)
                    yield family


class MetricsEndpoint:
    """Serves the sources at http://host:port/metrics; port 0 takes a free port."""

    def __init__(self, sources: list[MetricsSource], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.sources = sources
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.sources))
        self._server, self._thread = start_http_server(self.port, self.host, registry)
        self.port = int(self._server.server_port)
        log.info("metrics_endpoint_started", url=self.url)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop the HTTP server and join its thread; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


def resource_statistics_source(devices: Callable[[], list[Any]]) -> MetricsSource:
    """A source with every resource's counters (`<device>_<resource>_<counter>`)."""

    def read() -> dict[str, object]:
        out: dict[str, object] = {}
        for device in devices():
            for res_name, stats in device.statistics().items():
                for field in ("events_processed", "queue_length", "queue_high_water",
                              "events_dropped", "external_dropped", "faults"):
                    out[f"{device.name}_{res_name}_{field}"] = getattr(stats, field)
        return out

    return read
