"""The function block library written in Python (IEC names kept verbatim).

`register(library)` adds every native type to a `testbed.library.TypeLibrary`. The I/O,
cloud, AI and communication FBs are registered lazily: their modules (and the stacks they
pull in: asyncua, pymodbus, paho, onnxruntime) are imported only when a network first
names one of their types, so `import fb` and `testbed boot` stay fast.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from fb.csvwriter import csv_writer_type
from fb.events import event_types
from fb.functions import conversion_type, copy_types, function_types, mux_type
from fb.restart import E_RESTART
from fb.testfbs import OUT_ANY_CONSOLE, STEST_END, TEST_CONDITION, stopwatch_type
from fb.timers import E_CYCLE, E_DELAY, E_N_TABLE, E_RDELAY, E_TABLE, E_TRAIN

if TYPE_CHECKING:
    from testbed.library import FamilyMaker, TypeLibrary
    from testbed.model import FBType

__all__ = ["LAZY_FAMILIES", "LAZY_NAMES", "register"]

_SERVICE_CLASSES = (E_RESTART, E_CYCLE, E_DELAY, E_RDELAY, E_TRAIN, E_TABLE, E_N_TABLE,
                    TEST_CONDITION, STEST_END, OUT_ANY_CONSOLE)

LAZY_FAMILIES: tuple[tuple[str, str, str], ...] = (
    (r"ONNX_INFER_(\d+)_(\d+)|VIB_FEATURES|SLIDING_WINDOW|WINDOW_STATS", "fb.ai", "ai_type"),
    (r"PUBLISH_(\d+)", "fb.net.commfb", "publish_type"),
    (r"SUBSCRIBE_(\d+)", "fb.net.commfb", "subscribe_type"),
    (r"CLIENT_(\d+)(?:_(\d+))?", "fb.net.commfb", "client_type"),
    (r"SERVER_(\d+)(?:_(\d+))?", "fb.net.commfb", "server_type"),
    (r"OPCUA_READ_(\d+)", "fb.io.opcua", "opcua_read_type"),
    (r"OPCUA_WRITE_(\d+)", "fb.io.opcua", "opcua_write_type"),
    (r"OPCUA_SUBSCRIBE_(\d+)", "fb.io.opcua", "opcua_subscribe_type"),
    (r"OPCUA_METHOD_(\d+)_(\d+)", "fb.io.opcua", "opcua_method_type"),
    (r"MODBUS_READ_(\d+)", "fb.io.modbus", "modbus_read_type"),
    (r"MODBUS_WRITE_(\d+)", "fb.io.modbus", "modbus_write_type"),
    (r"MODBUS_POLL_(\d+)", "fb.io.modbus", "modbus_poll_type"),
    (r"CLOUD_TELEMETRY_(\d+)", "fb.cloud.fbs", "cloud_telemetry_type"),
    (r"CLOUD_COMMAND_(\d+)", "fb.cloud.fbs", "cloud_command_type"),
)
"""(name pattern, module, maker) of the families whose module is imported on first use.

Kept in step with `fb.ai.AI_TYPE_PATTERN`, `fb.io.IO_FAMILIES` and `fb.cloud.register`
(tests/fb/test_lazy_registration.py checks it)."""

LAZY_NAMES: tuple[tuple[str, str, str], ...] = (
    ("CLOUD_TWIN", "fb.cloud.fbs", "CLOUD_TWIN"),
)
"""(type name, module, class with an `FB_TYPE`) of single types imported on first use."""


def _family_maker(module: str, maker: str) -> FamilyMaker:
    """A maker that imports `module` on its first call and delegates to its `maker`."""

    def make(m: re.Match[str]) -> FBType:
        return cast("FamilyMaker", getattr(importlib.import_module(module), maker))(m)

    return make


def _name_loader(module: str, cls: str) -> Callable[[str], FBType]:
    """A loader that imports `module` on first use and returns `cls.FB_TYPE`."""

    def load(_name: str) -> FBType:
        return cast("FBType", getattr(importlib.import_module(module), cls).FB_TYPE)

    return load


def register(library: TypeLibrary) -> None:
    """Add every native FB type and type family to `library`."""
    origin = "fb (native)"
    for fb_type in [*event_types(), *copy_types(), *function_types(), stopwatch_type()]:
        library.add(fb_type, origin)
    for cls in _SERVICE_CLASSES:
        library.add(cls.FB_TYPE, origin)
    library.add_family(r"CSV_WRITER_(\d+)", csv_writer_type, origin)
    library.add_family(r"F_MUX_(\d+)", mux_type, origin)
    for pattern, module, maker in LAZY_FAMILIES:
        library.add_family(pattern, _family_maker(module, maker), origin)
    for name, module, class_name in LAZY_NAMES:
        library.add_lazy([name], _name_loader(module, class_name), origin)
    library.add_family(
        r"F_([A-Z]+(?:_[A-Z]+)*?)(_BCD)?_TO_(BCD_)?([A-Z]+(?:_[A-Z]+)*)", conversion_type,
        origin)
