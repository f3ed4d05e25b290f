"""Modbus-specific members of the driver error tree.

DriverConfigError
└── PointValueError          a value the point's type, scale or length cannot hold
ProtocolError
└── ModbusExceptionResponse  the device answered with a Modbus exception code
"""

from __future__ import annotations

from drivers.errors import DriverConfigError, ProtocolError

__all__ = ["EXCEPTION_NAMES", "ModbusExceptionResponse", "PointValueError"]

EXCEPTION_NAMES: dict[int, str] = {
    0x01: "ILLEGAL_FUNCTION",
    0x02: "ILLEGAL_DATA_ADDRESS",
    0x03: "ILLEGAL_DATA_VALUE",
    0x04: "SERVER_DEVICE_FAILURE",
    0x05: "ACKNOWLEDGE",
    0x06: "SERVER_DEVICE_BUSY",
    0x07: "NEGATIVE_ACKNOWLEDGE",
    0x08: "MEMORY_PARITY_ERROR",
    0x0A: "GATEWAY_PATH_UNAVAILABLE",
    0x0B: "GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND",
}


class PointValueError(DriverConfigError):
    """A value the point's data type, scaling or length cannot hold."""


class ModbusExceptionResponse(ProtocolError):
    """The device answered a request with a Modbus exception code."""

    def __init__(self, function_code: int, exception_code: int, request: str) -> None:
        self.function_code = function_code
        self.exception_code = exception_code
        self.exception_name = EXCEPTION_NAMES.get(exception_code, f"UNKNOWN_{exception_code}")
        super().__init__(
            f"{request}: device answered exception {exception_code:#04x} "
            f"({self.exception_name}) to function {function_code}"
        )

    @property
    def is_illegal_address(self) -> bool:
        """True for ILLEGAL_DATA_ADDRESS, the answer to a read of unmapped addresses."""
        return self.exception_code == 0x02
