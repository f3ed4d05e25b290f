"""Field-I/O service FBs on the OPC UA and Modbus drivers.

Families (n, m = number of values): `OPCUA_READ_n`, `OPCUA_WRITE_n`, `OPCUA_SUBSCRIBE_n`,
`OPCUA_METHOD_n_m`, `MODBUS_READ_n`, `MODBUS_WRITE_n`, `MODBUS_POLL_n`. Each has
INIT/INITO, QI/QO and STATUS as FORTE's service FBs do; data comes back as external
events through the resource's queue. Sessions live in the device's `IoPool`
(`fb.io.pool`), which owns every task in one TaskGroup on its I/O thread. OPC UA
security (certificates, trust, users) comes from the device's client profiles
(`fb.io.opcua_clients`, attached with `use_opcua_clients`), as FORTE takes it from its
configuration rather than from FB inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fb.io.modbus import modbus_poll_type, modbus_read_type, modbus_write_type
from fb.io.opcua import (
    opcua_method_type,
    opcua_read_type,
    opcua_subscribe_type,
    opcua_write_type,
)
from fb.io.opcua_clients import (
    OpcUaClientProfile,
    OpcUaClientProfiles,
    load_opcua_clients,
    use_opcua_clients,
)
from fb.io.pool import IoLease, IoPool, IoPoolStatistics, pool_for

if TYPE_CHECKING:
    from testbed.library import TypeLibrary

__all__ = [
    "IO_FAMILIES",
    "IoLease",
    "IoPool",
    "IoPoolStatistics",
    "OpcUaClientProfile",
    "OpcUaClientProfiles",
    "load_opcua_clients",
    "pool_for",
    "register",
    "use_opcua_clients",
]

IO_FAMILIES = (
    (r"OPCUA_READ_(\d+)", opcua_read_type),
    (r"OPCUA_WRITE_(\d+)", opcua_write_type),
    (r"OPCUA_SUBSCRIBE_(\d+)", opcua_subscribe_type),
    (r"OPCUA_METHOD_(\d+)_(\d+)", opcua_method_type),
    (r"MODBUS_READ_(\d+)", modbus_read_type),
    (r"MODBUS_WRITE_(\d+)", modbus_write_type),
    (r"MODBUS_POLL_(\d+)", modbus_poll_type),
)
"""(name pattern, type maker) of every field-I/O FB family."""


def register(library: TypeLibrary, origin: str = "fb (native)") -> None:
    """Add the field-I/O FB families to `library`."""
    for pattern, maker in IO_FAMILIES:
        library.add_family(pattern, maker, origin)
