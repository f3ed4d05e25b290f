"""Mapping asyncua's exceptions into the driver error tree, at the session boundary.

    ProtocolError
    └── OpcUaStatusError      the server answered with a Bad status (code and name kept)
    SecurityError
    └── OpcUaSecurityError    certificate, policy or credential rejected (code and name kept)
    ConnectionLost, DriverTimeout: transport gone, session gone, deadline passed

asyncua raises ``UaStatusCodeError`` subclasses, ``ConnectionError``/``OSError`` and
``TimeoutError``; this module is the one place that knows which is which.
"""

from __future__ import annotations

from asyncua.ua import status_codes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from drivers.errors import ConnectionLost, DriverError, DriverTimeout, ProtocolError, SecurityError

__all__ = [
    "OpcUaSecurityError",
    "OpcUaStatusError",
    "error_for_status",
    "item_error",
    "map_asyncua_error",
    "status_name",
]

_SEVERITY_AND_SUBCODE = 0xFFFF0000

_CONNECTION_STATUS = frozenset(
    {
        "BadConnectionClosed",
        "BadConnectionRejected",
        "BadServerNotConnected",
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadSessionNotActivated",
        "BadSecureChannelClosed",
        "BadSecureChannelIdInvalid",
        "BadCommunicationError",
        "BadNotConnected",
        "BadShutdown",
        "BadServerHalted",
        "BadDisconnect",
        "BadTcpInternalError",
    }
)
_TIMEOUT_STATUS = frozenset({"BadTimeout", "BadRequestTimeout"})
_SECURITY_STATUS = frozenset(
    {
        "BadSecurityChecksFailed",
        "BadSecurityPolicyRejected",
        "BadSecurityModeRejected",
        "BadUserAccessDenied",
        "BadIdentityTokenInvalid",
        "BadIdentityTokenRejected",
        "BadUserSignatureInvalid",
        "BadApplicationSignatureInvalid",
        "BadNoValidCertificates",
        "BadNonceInvalid",
    }
)


def status_name(code: int) -> str:
    """The symbolic name of a StatusCode (info bits ignored), e.g. ``BadNodeIdUnknown``."""
    if code & _SEVERITY_AND_SUBCODE == 0:
        return "Good"
    name, _doc = status_codes.get_name_and_doc(code & _SEVERITY_AND_SUBCODE)
    return name


class OpcUaStatusError(ProtocolError):
    """The server answered with a Bad status code."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status_name = status_name(status_code)


class OpcUaSecurityError(SecurityError):
    """The server rejected our certificate, security policy or credentials."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status_name = status_name(status_code) if status_code is not None else None


def _is_security_status(name: str) -> bool:
    return name in _SECURITY_STATUS or name.startswith("BadCertificate")


def error_for_status(code: int, context: str) -> DriverError:
    """The driver error for a Bad status code met while doing ``context``."""
    name = status_name(code)
    message = f"{context}: {name} (0x{code:08X})"
    if _is_security_status(name):
        return OpcUaSecurityError(message, status_code=code)
    if name in _CONNECTION_STATUS:
        return ConnectionLost(message)
    if name in _TIMEOUT_STATUS:
        return DriverTimeout(message)
    return OpcUaStatusError(message, status_code=code)


def item_error(code: int, context: str) -> OpcUaStatusError:
    """The error for a Bad status of one item in a batch (access rights included)."""
    return OpcUaStatusError(f"{context}: {status_name(code)} (0x{code:08X})", status_code=code)


def map_asyncua_error(exc: Exception, context: str) -> DriverError:
    """Translate one asyncua/transport exception; the caller raises it ``from exc``.

    Never called for ``CancelledError`` (a BaseException): cancellation passes through.
    """
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, UaStatusCodeError):
        return error_for_status(int(exc.code), context)
    if isinstance(exc, TimeoutError):
        return DriverTimeout(f"{context}: no answer before the deadline")
    if isinstance(exc, ConnectionError | OSError | EOFError):
        return ConnectionLost(f"{context}: {exc or type(exc).__name__}")
    if isinstance(exc, UaError) and str(exc).startswith("No matching endpoints"):
        # asyncua's own check: the server offers no endpoint with our policy and mode
        return error_for_status(status_codes.StatusCodes.BadSecurityPolicyRejected,
                                f"{context} ({exc})")
    if isinstance(exc, UaError):
        return ProtocolError(f"{context}: {exc}")
    if isinstance(exc, ValueError | TypeError):
        return ProtocolError(f"{context}: malformed data: {exc}")
    return ProtocolError(f"{context}: unexpected {type(exc).__name__}: {exc}")
