"""FORTE's self-checking test FBs: TEST_CONDITION, STEST_END, and E_STOPWATCH.

TEST_CONDITION prints FORTE's plain lines (`[TEST_CONDITION_PASSED]: name`,
`[TEST_CONDITION_FAILED]: name`) whatever the log format, so scripts written for
FORTE keep working; a failed check is also logged as an error.
"""

from __future__ import annotations

import structlog

from testbed.fbdef import basic_fb, interface
from testbed.model import BasicFBType
from testbed.runtime.service import ServiceFB

__all__ = ["OUT_ANY_CONSOLE", "STEST_END", "TEST_CONDITION", "stopwatch_type"]

log = structlog.get_logger(__name__)


class TEST_CONDITION(ServiceFB):
    """Counts a check: passes if `check` is TRUE, fails otherwise."""

    INTERFACE = interface(ei="REQ(check)", eo="CNF", inputs="check:BOOL")

    def on_REQ(self) -> None:
        report = self._res.test_report
        report.executed += 1
        if self.check:
            self._res.console(f"[TEST_CONDITION_PASSED]: {self.name}")
        else:
            report.failed += 1
            self._res.console(f"[TEST_CONDITION_FAILED]: {self.name}")
            log.error("test_condition_failed", fb=self.name, resource=self._res.name)
        self.emit_CNF()


class STEST_END(ServiceFB):
    """Ends the system test: stops the device, as FORTE's STEST_END does."""

    INTERFACE = interface(ei="REQ")

    def on_REQ(self) -> None:
        device = self._res.device
        if device is not None:
            device.shutdown("STEST_END")
        else:
            self._res.kill()


def stopwatch_type() -> BasicFBType:
    """E_STOPWATCH: TD is the time between START and STOP on the resource clock."""
    return basic_fb(
        "E_STOPWATCH", interface(ei="START STOP", eo="EO(TD)", outputs="TD:TIME"),
        states="START Measure[captureStartTime/] STOP[calcDiff/EO]",
        transitions="START->Measure: START; Measure->STOP: STOP; STOP->START: 1",
        algorithms={"captureStartTime": "startTime = self._res.clock.now_ns()",
                    "calcDiff": "TD = self._res.clock.now_ns() - startTime"},
        internals="startTime:TIME",
        comment="Measure the time between START and STOP", source=__name__)


class OUT_ANY_CONSOLE(ServiceFB):
    """Prints `LABEL = value` on the device console when QI is TRUE (debugging, tracing)."""

    INTERFACE = interface(ei="REQ(QI,IN,LABEL)", eo="CNF(QO)",
                          inputs="QI:BOOL LABEL:STRING IN:ANY", outputs="QO:BOOL")

    def on_REQ(self) -> None:
        if self.QI:
            from testbed.types import ELEMENTARY, format_value

            tname = self.input_type_name("IN")
            value = self.IN
            text = value if isinstance(value, str) else format_value(
                ELEMENTARY.get(tname or ""), value)
            self._res.console(f"{self.LABEL} = {text}")
        self.QO = bool(self.QI)
        self.emit_CNF()
