"""Errors of the driver packages (usable without testbed).

    DriverError
    ├── DriverConfigError     invalid address, ID string, profile or option
    ├── ConnectionLost        the peer went away or could not be reached
    ├── DriverTimeout         a network operation passed its deadline
    ├── ProtocolError         the peer answered with an error or malformed data
    └── SecurityError         certificate, trust or credential rejected

Library exceptions (asyncua, pymodbus, paho, onnxruntime) are mapped into this
tree at the driver boundary with `raise ... from exc`.
"""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error raised by a driver."""


class DriverConfigError(DriverError, ValueError):
    """An invalid address, ID string, profile or option."""


class ConnectionLost(DriverError):
    """The peer went away or could not be reached."""


class DriverTimeout(DriverError, TimeoutError):
    """A network operation passed its deadline."""


class ProtocolError(DriverError):
    """The peer answered with an error status or malformed data."""


class SecurityError(DriverError):
    """A certificate, trust-list or credential check failed."""
