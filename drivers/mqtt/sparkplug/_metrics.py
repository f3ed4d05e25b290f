"""Metric declarations and report-by-exception for the edge node.

A `MetricSpec` declares what a BIRTH announces; `Deadband` decides whether a new value is
different enough from the last reported one to be worth a DATA message.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from drivers.mqtt.sparkplug._codec import wire_value
from drivers.mqtt.sparkplug._errors import MetricValueError
from drivers.mqtt.sparkplug._types import NUMERIC_TYPES, DataType, MetricValue, Property


class DeadbandKind(enum.StrEnum):
    """How a deadband's `amount` is read."""

    ABSOLUTE = "absolute"
    """Report when |new - last reported| > amount (engineering units)."""
    PERCENT = "percent"
    """Report when |new - last reported| > amount % of |last reported| (any change from 0)."""


@dataclass(frozen=True, slots=True)
class Deadband:
    """A per-metric deadband for report by exception (numeric datatypes only)."""

    kind: DeadbandKind
    amount: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.amount) or self.amount < 0:
            raise MetricValueError(f"deadband amount {self.amount} must be finite and >= 0")

    def exceeded(self, last: float, new: float) -> bool:
        """True when `new` differs from `last` by more than the band."""
        if math.isnan(last) or math.isnan(new):
            return not (math.isnan(last) and math.isnan(new))
        change = abs(new - last)
        if self.kind is DeadbandKind.ABSOLUTE:
            return change > self.amount
        if last == 0:
            return change > 0
        return change > abs(last) * self.amount / 100.0


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric an edge node or device declares in its BIRTH.

    `initial` is the value the first BIRTH carries (None: an explicit null). Without a
    deadband every change is reported; equal values are never reported twice.
    """

    name: str
    datatype: DataType
    initial: MetricValue = None
    deadband: Deadband | None = None
    properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise MetricValueError("a metric needs a non-empty name")
        if self.deadband is not None and self.datatype not in NUMERIC_TYPES:
            raise MetricValueError(
                f"metric {self.name!r}: a deadband needs a numeric datatype,"
                f" not {self.datatype.name}"
            )
        self.check(self.initial)

    def check(self, value: MetricValue) -> None:
        """Raise MetricValueError if `value` does not fit this metric's datatype."""
        if value is not None:
            wire_value(self.datatype, value, f"metric {self.name!r}")

    def should_report(self, last: MetricValue, new: MetricValue) -> bool:
        """Report-by-exception: is `new` worth sending given the `last` reported value?"""
        if last is None or new is None:
            return last is not new
        if (
            self.deadband is not None
            and isinstance(last, int | float)
            and isinstance(new, int | float)
        ):
            return self.deadband.exceeded(float(last), float(new))
        return bool(last != new)
