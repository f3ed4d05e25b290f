"""Building one member of a sized service-FB family (`MODBUS_READ_12`, `OPCUA_WRITE_3`,
`CLOUD_TELEMETRY_7`) from the count in its type name: shared by the I/O and cloud FBs."""

from __future__ import annotations

from testbed.fbdef import interface
from testbed.model import ServiceFBType
from testbed.runtime.service import ServiceFB

__all__ = ["family_type", "pin_count", "pin_names"]


def pin_count(text: str, what: str, limit: int, minimum: int = 1) -> int:
    """The count of a family member's type name, checked against the family's bounds."""
    count = int(text)
    if not minimum <= count <= limit:
        raise ValueError(f"{what}: {minimum}..{limit} values, got {count}")
    return count


def pin_names(prefix: str, n: int) -> list[str]:
    """`RD_1`..`RD_n`."""
    return [f"{prefix}_{i}" for i in range(1, n + 1)]


def family_type(name: str, base: type[ServiceFB], ei: str, eo: str, inputs: str,
                outputs: str, n_sd: int, n_rd: int, doc: str, *, module: str) -> ServiceFBType:
    """Subclass `base` with the member's interface and pin counts; its FB type."""
    cls = type(name, (base,), {
        "INTERFACE": interface(ei=ei, eo=eo, inputs=inputs, outputs=outputs),
        "N_SD": n_sd, "N_RD": n_rd, "__module__": module, "__doc__": doc,
    })
    fb_type = getattr(cls, "FB_TYPE", None)
    if not isinstance(fb_type, ServiceFBType):
        raise TypeError(f"{name} did not build a service FB type")
    return fb_type
