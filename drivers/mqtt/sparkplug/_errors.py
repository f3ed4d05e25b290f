"""Sparkplug-specific errors, all inside the driver tree of `drivers/errors.py`.

    ProtocolError (drivers.errors)
    ├── SparkplugDecodeError      bytes are not a Sparkplug B payload / STATE / topic
    ├── PayloadTooLargeError      a payload passes the configured size limit
    ├── UnknownAliasError         a DATA metric names an alias no BIRTH declared
    ├── DatatypeMismatchError     the value field does not fit the declared datatype
    └── UnsupportedDatatypeError  a datatype this codec does not carry (DataSet, Template, ...)
    DriverConfigError (drivers.errors)
    └── MetricValueError          the application passed a value that does not fit its datatype

Each carries a short machine-readable `reason` so callers can count failures by kind.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.errors import DriverConfigError, ProtocolError


class SparkplugDecodeError(ProtocolError):
    """The bytes are not a valid Sparkplug B payload, STATE message or topic."""

    reason: ClassVar[str] = "malformed"


class PayloadTooLargeError(ProtocolError):
    """A payload is larger than the configured limit (on encode or decode)."""

    reason: ClassVar[str] = "oversize"


class UnknownAliasError(ProtocolError):
    """A metric refers to an alias (or name) that no BIRTH declared."""

    reason: ClassVar[str] = "unknown_alias"


class DatatypeMismatchError(ProtocolError):
    """A metric's value field does not match its declared datatype."""

    reason: ClassVar[str] = "wrong_datatype"


class UnsupportedDatatypeError(ProtocolError):
    """A datatype this codec does not carry (DataSet, Template, PropertySet values)."""

    reason: ClassVar[str] = "unsupported_datatype"


class MetricValueError(DriverConfigError):
    """The application gave a metric value that does not fit its declared datatype."""

    reason: ClassVar[str] = "bad_value"
