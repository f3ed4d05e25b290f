"""Benchmark figures: readable lines, then one JSON line per figure (DESIGN's format)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

__all__ = ["Figure", "print_figures"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure; `ratio = value / baseline_value` when there is a baseline."""

    bench: str
    figure: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    note: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value

    def as_json(self) -> str:
        data: dict[str, object] = {
            "bench": self.bench, "figure": self.figure, "value": self.value,
            "unit": self.unit, "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "ratio": None if self.ratio is None else round(self.ratio, 4),
        }
        if self.note:
            data["note"] = self.note
        return json.dumps(data)

    def readable(self) -> str:
        text = f"{self.bench}/{self.figure}: {self.value:.6g} {self.unit}"
        if self.baseline_value is not None and self.ratio is not None:
            text += f"  (baseline {self.baseline}: {self.baseline_value:.6g}; " \
                    f"ratio {self.ratio:.3f})"
        if self.note:
            text += f"  [{self.note}]"
        return text


def print_figures(figures: list[Figure]) -> None:
    lines = [f.readable() for f in figures] + [f.as_json() for f in figures]
    with contextlib.suppress(BrokenPipeError):  # output piped into `head`
        print("\n".join(lines), flush=True)
