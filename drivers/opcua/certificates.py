"""Self-signed OPC UA application certificates for tests and simulated PLCs.

OPC UA peers check the certificate's subjectAltName URI against the
ApplicationUri they announce (asyncua's server rejects a mismatch), so the URI is
part of every certificate made here. Key usage bits follow OPC 10000-6 6.2.2
(the same set asyncua's own generator uses). RSA key generation is CPU work of
tens of milliseconds: call these functions from a thread in async code
(``await asyncio.to_thread(generate_application_certificate, ...)``).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ApplicationCertificate",
    "CertificateFiles",
    "generate_application_certificate",
]


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where a certificate and its private key were written (PEM)."""

    certificate_path: Path
    private_key_path: Path


@dataclass(frozen=True, slots=True)
class ApplicationCertificate:
    """A certificate and its unencrypted private key, both PEM, plus the URI it names."""

    certificate_pem: bytes
    private_key_pem: bytes
    application_uri: str

    @property
    def certificate_der(self) -> bytes:
        """The certificate in DER, as OPC UA puts it on the wire."""
        cert = x509.load_pem_x509_certificate(self.certificate_pem)
        return cert.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint_sha1(self) -> str:
        """The OPC UA thumbprint (SHA-1 of the DER), hex; identifies the certificate."""
        return hashlib.sha1(self.certificate_der, usedforsecurity=False).hexdigest()

    def write(self, directory: Path, stem: str) -> CertificateFiles:
        """Write ``<stem>.pem`` and ``<stem>.key.pem`` (key mode 0600); blocking file I/O."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key.pem"
        cert_path.write_bytes(self.certificate_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(self.private_key_pem)
        return CertificateFiles(cert_path, key_path)


def generate_application_certificate(
    application_uri: str,
    common_name: str,
    *,
    hostnames: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    organization: str = "testbed",
    valid_days: int = 365,
    key_size: int = 2048,
) -> ApplicationCertificate:
    """Make a self-signed certificate usable by an OPC UA client and server alike.

    The machine's own host name is always added to the DNS names so peers that
    check it (asyncua logs a warning otherwise) are satisfied.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    dns_names = list(dict.fromkeys((*hostnames, socket.gethostname())))
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    alt_names += [x509.DNSName(host) for host in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    certificate = builder.sign(key, hashes.SHA256())
    return ApplicationCertificate(
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        application_uri=application_uri,
    )
