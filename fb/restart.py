"""E_RESTART: the resource's own FB announcing COLD/WARM start and STOP."""

from __future__ import annotations

from testbed.fbdef import interface
from testbed.runtime.service import ServiceFB

__all__ = ["E_RESTART"]


class E_RESTART(ServiceFB):
    """Fires COLD on the first start, WARM on later starts and STOP before stopping."""

    INTERFACE = interface(eo="COLD WARM STOP")
