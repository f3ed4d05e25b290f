"""Values as the caller sees them: value, OPC UA quality and timestamps, never bare.

A value without its status hides the difference between "the tank is empty" and
"the sensor is gone"; every read and every notification therefore carries a
``Quality`` built from the OPC UA StatusCode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from drivers.errors import DriverConfigError
from drivers.opcua.addressing import NodeAddress
from drivers.opcua.errors import status_name

__all__ = ["DataValueResult", "Quality"]

_SEVERITY_MASK = 0xC0000000
_GOOD = 0x00000000
_UNCERTAIN = 0x40000000


@dataclass(frozen=True, slots=True)
class Quality:
    """An OPC UA StatusCode with its name and severity."""

    status_code: int
    status_name: str

    @classmethod
    def from_code(cls, code: int) -> Quality:
        """Quality for a raw StatusCode value."""
        return cls(code, status_name(code))

    @classmethod
    def from_name(cls, name: str) -> Quality:
        """Quality for a StatusCode name such as ``BadNotConnected``."""
        code = getattr(StatusCodes, name, None)
        if not isinstance(code, int):
            raise DriverConfigError(f"unknown OPC UA status name {name!r}")
        return cls.from_code(code)

    @property
    def good(self) -> bool:
        """True for Good severity."""
        return self.status_code & _SEVERITY_MASK == _GOOD

    @property
    def uncertain(self) -> bool:
        """True for Uncertain severity."""
        return self.status_code & _SEVERITY_MASK == _UNCERTAIN

    @property
    def bad(self) -> bool:
        """True for Bad severity (including the reserved one)."""
        return not self.good and not self.uncertain


GOOD = Quality(0, "Good")


@dataclass(frozen=True, slots=True)
class DataValueResult:
    """One value read or notified: address, value, quality and timestamps."""

    address: NodeAddress
    value: object
    quality: Quality
    source_timestamp: datetime | None = None
    server_timestamp: datetime | None = None

    @property
    def good(self) -> bool:
        """Shortcut for ``quality.good``."""
        return self.quality.good

    @classmethod
    def from_data_value(cls, address: NodeAddress, data_value: ua.DataValue) -> DataValueResult:
        """Convert an asyncua DataValue (the boundary type) into our frozen result."""
        status = data_value.StatusCode
        code = int(status.value) if status is not None else 0
        variant = data_value.Value
        value = variant.Value if variant is not None else None
        return cls(
            address=address,
            value=value,
            quality=GOOD if code == 0 else Quality.from_code(code),
            source_timestamp=data_value.SourceTimestamp,
            server_timestamp=data_value.ServerTimestamp,
        )

    @classmethod
    def bad(cls, address: NodeAddress, status: str) -> DataValueResult:
        """A value-less result with a Bad quality (connection gone, node unknown...)."""
        return cls(address=address, value=None, quality=Quality.from_name(status))
