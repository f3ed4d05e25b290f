"""Server-side gatekeepers: a client-certificate trust list and a username/password table.

asyncua's server accepts any client certificate unless a validator says no, and
any user unless a user manager says no; these two objects say no to strangers.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Iterable, Mapping

import structlog
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["ClientTrustList", "PasswordUserManager"]

_log = structlog.get_logger(__name__)


def _thumbprint(certificate: x509.Certificate) -> str:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class ClientTrustList:
    """Accepts a client certificate only if it is in the list, current and names the client."""

    def __init__(self, trusted: Iterable[x509.Certificate]) -> None:
        self._thumbprints = frozenset(_thumbprint(cert) for cert in trusted)

    def __len__(self) -> int:
        return len(self._thumbprints)

    async def validate(
        self, certificate: x509.Certificate, description: ua.ApplicationDescription
    ) -> None:
        """asyncua's validator hook: raise ServiceError with a Bad status to reject."""
        now = datetime.datetime.now(datetime.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            _log.warning(
                "client_certificate_rejected", reason="time", uri=description.ApplicationUri
            )
            raise ServiceError(StatusCodes.BadCertificateTimeInvalid)
        if _thumbprint(certificate) not in self._thumbprints:
            _log.warning(
                "client_certificate_rejected", reason="untrusted", uri=description.ApplicationUri
            )
            raise ServiceError(StatusCodes.BadCertificateUntrusted)
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound as exc:
            raise ServiceError(StatusCodes.BadCertificateUriInvalid) from exc
        if description.ApplicationUri not in san.value.get_values_for_type(
            x509.UniformResourceIdentifier
        ):
            _log.warning(
                "client_certificate_rejected", reason="uri", uri=description.ApplicationUri
            )
            raise ServiceError(StatusCodes.BadCertificateUriInvalid)


class PasswordUserManager(UserManager):
    """asyncua user manager: known users with the right password, anonymous if allowed."""

    def __init__(self, users: Mapping[str, str], *, allow_anonymous: bool) -> None:
        self._users = dict(users)
        self._allow_anonymous = allow_anonymous

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | bytes | None = None,
        certificate: object = None,
    ) -> User | None:
        """Return the user, or None to make the server answer BadUserAccessDenied."""
        del iserver, certificate
        if username is None:
            return User(role=UserRole.User) if self._allow_anonymous else None
        expected = self._users.get(username)
        if isinstance(password, bytes):
            given = password.decode("utf-8", errors="replace")
        else:
            given = password or ""
        if expected is None or not hmac.compare_digest(expected.encode(), given.encode()):
            _log.warning("user_rejected", username=username)
            return None
        return User(role=UserRole.User, name=username)
