"""The one exception tree of testbed.

    TestbedError
    ├── ConfigError            bad configuration or scenario input (names file, line, field)
    ├── TypeLibraryError       unknown, duplicate or malformed FB/data types
    │   └── STCompileError     Structured Text that does not parse or type-check
    ├── LiteralError           an IEC 61131-3 literal that is malformed or out of range
    ├── NetworkError           an FB network that is inconsistent (bad connection, unknown pin)
    │   └── PathError          an unknown dotted path (also a KeyError)
    ├── BootFileError          a .fboot line that cannot be read or executed
    ├── ManagementError        a management request that fails (carries FORTE's reason text)
    ├── RuntimeFault           an FB raised or looped while handling an event
    │   └── EventlessLoopError an ECC cycle of event-less transitions
    ├── BenchmarkError         a benchmark that cannot run as asked
    │   (defined beside the code that raises them, all children of TestbedError:)
    ├── fourdiac.fbdk_asn1.Asn1DecodeError / Asn1EncodeError   FBDK ASN.1 data
    ├── fourdiac.mgmt_frames.FrameError                         management framing
    ├── fourdiac.comm_id.CommIdError                            communication ID strings
    ├── ai.errors.ModelError                                    ONNX models
    │   ├── RegistryError, FederatedError
    ├── deploy.registry.DeployError                             remote deployment
    └── cloud.telemetry.CloudStoreError                         the cloud's telemetry store

Driver packages (`drivers/`) do not import testbed; their own tree is rooted at
`drivers.errors.DriverError` and is mapped at the FB boundary into QO/STATUS.
"""

from __future__ import annotations

from dataclasses import dataclass


class TestbedError(Exception):
    """Root of every error raised by testbed itself."""

    __test__ = False  # not a pytest test class despite the name


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in an input file something went wrong (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        text = ":".join(parts)
        if self.field:
            text += f" ({self.field})"
        return text


class LocatedError(TestbedError):
    """An error tied to a place in an input file."""

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConfigError(LocatedError):
    """Configuration or scenario input that does not validate."""


class TypeLibraryError(LocatedError):
    """An FB or data type that is unknown, duplicated or malformed."""


class STCompileError(TypeLibraryError):
    """Structured Text that does not parse or does not type-check."""


class LiteralError(TestbedError, ValueError):
    """An IEC 61131-3 literal that is malformed or does not fit its type."""


class NetworkError(TestbedError):
    """An FB network that is inconsistent: unknown pin, type mismatch, fan-in on data."""


class PathError(NetworkError, KeyError):
    """A dotted path that names nothing; the message lists the nearest names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BootFileError(LocatedError):
    """A boot file line that cannot be read or executed."""


class ManagementError(TestbedError):
    """A management request that fails; `reason` is FORTE's response text."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}" if message else reason)


class RuntimeFault(TestbedError):
    """An FB raised or misbehaved while handling an event."""


class EventlessLoopError(RuntimeFault):
    """An ECC kept firing event-less transitions past the step bound."""


class BenchmarkError(TestbedError):
    """A benchmark that cannot run as asked."""
