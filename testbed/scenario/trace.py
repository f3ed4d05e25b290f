"""An event trace of a few named FB output events, for measurements across processes.

`EventTrace` is a resource `Tracer`: each watched event (`FB.EVENT` or `FB.EVENT(PIN,...)`)
is kept in memory with the resource clock's time and the named pins' values, and written
to `trace/<FB.EVENT>.csv` at the end. On the real clock that is CLOCK_MONOTONIC, one clock
for every process on a Linux host, so two site processes' traces can be joined (a
publisher's CNF with the subscriber's IND carrying the same sequence number); on
`clock: virtual` it is the virtual time, so a trace lines up with the run's series.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import ConfigError
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Tracer

__all__ = ["EventTrace", "TracePoint", "parse_trace_point", "read_trace"]

_POINT = re.compile(r"^(?P<event>[A-Za-z_][\w.]*\.[A-Za-z_]\w*)(?:\((?P<pins>[\w, ]*)\))?$")
MAX_ROWS = 200_000
"""Rows kept per point; later events are counted in `dropped`, not kept."""


@dataclass(frozen=True, slots=True)
class TracePoint:
    """`FB.EVENT` and the pins whose values each row records."""

    event_path: str
    pins: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return f"{self.event_path}.csv"


def parse_trace_point(text: str) -> TracePoint:
    """`XS.Pub.CNF(SD_1,SD_2)` -> TracePoint; a malformed entry is a ConfigError."""
    m = _POINT.match(text.strip())
    if m is None:
        raise ConfigError(f"trace point {text!r} is not FB.EVENT or FB.EVENT(PIN,...)")
    pins = tuple(p.strip() for p in (m.group("pins") or "").split(",") if p.strip())
    return TracePoint(m.group("event"), pins)


class EventTrace(Tracer):
    """Records watched output events in memory; `write(folder)` stores them as CSV."""

    def __init__(self, watched: dict[FBInstance, dict[str, TracePoint]]) -> None:
        self._watched = watched
        self._rows: dict[str, list[tuple[object, ...]]] = {
            p.event_path: [] for events in watched.values() for p in events.values()}
        self.dropped = 0

    def on_emit(self, fb: FBInstance, event: str) -> None:
        events = self._watched.get(fb)
        if events is None:
            return
        point = events.get(event)
        if point is None:
            return
        rows = self._rows[point.event_path]
        if len(rows) >= MAX_ROWS:
            self.dropped += 1
            return
        rows.append((fb.resource.clock.now_ns(), *(fb.get(pin) for pin in point.pins)))

    def rows(self, event_path: str) -> list[tuple[object, ...]]:
        return list(self._rows.get(event_path, []))

    def write(self, folder: Path) -> list[Path]:
        """One CSV per point: `t_ns` then the pins (blocking: call it off the loop)."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        points = {p.event_path: p for events in self._watched.values() for p in events.values()}
        for path, point in points.items():
            out = folder / point.file_name
            with out.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["t_ns", *point.pins])
                writer.writerows(self._rows[path])
            written.append(out)
        return written


def read_trace(path: Path) -> list[dict[str, str]]:
    """The rows of a trace CSV (empty when the file is missing: the site never wrote it)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
