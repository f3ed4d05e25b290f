"""The function block library written in Python (IEC names kept verbatim).

`register(library)` adds every native type to a `testbed.library.TypeLibrary`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fb.ai import AI_TYPE_PATTERN, ai_type
from fb.cloud import register as register_cloud
from fb.csvwriter import csv_writer_type
from fb.events import event_types
from fb.functions import conversion_type, copy_types, function_types, mux_type
from fb.io import register as register_io
from fb.net.commfb import client_type, publish_type, server_type, subscribe_type
from fb.restart import E_RESTART
from fb.testfbs import OUT_ANY_CONSOLE, STEST_END, TEST_CONDITION, stopwatch_type
from fb.timers import E_CYCLE, E_DELAY, E_N_TABLE, E_RDELAY, E_TABLE, E_TRAIN

if TYPE_CHECKING:
    from testbed.library import TypeLibrary

__all__ = ["register"]

_SERVICE_CLASSES = (E_RESTART, E_CYCLE, E_DELAY, E_RDELAY, E_TRAIN, E_TABLE, E_N_TABLE,
                    TEST_CONDITION, STEST_END, OUT_ANY_CONSOLE)


def register(library: TypeLibrary) -> None:
    """Add every native FB type and type family to `library`."""
    origin = "fb (native)"
    for fb_type in [*event_types(), *copy_types(), *function_types(), stopwatch_type()]:
        library.add(fb_type, origin)
    for cls in _SERVICE_CLASSES:
        library.add(cls.FB_TYPE, origin)
    library.add_family(r"CSV_WRITER_(\d+)", csv_writer_type, origin)
    library.add_family(r"F_MUX_(\d+)", mux_type, origin)
    library.add_family(AI_TYPE_PATTERN, ai_type, origin)
    library.add_family(r"PUBLISH_(\d+)", publish_type, origin)
    library.add_family(r"SUBSCRIBE_(\d+)", subscribe_type, origin)
    library.add_family(r"CLIENT_(\d+)(?:_(\d+))?", client_type, origin)
    library.add_family(r"SERVER_(\d+)(?:_(\d+))?", server_type, origin)
    register_io(library, origin)
    register_cloud(library, origin)
    library.add_family(
        r"F_([A-Z]+(?:_[A-Z]+)*?)(_BCD)?_TO_(BCD_)?([A-Z]+(?:_[A-Z]+)*)", conversion_type,
        origin)
