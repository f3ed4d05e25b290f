"""Security: encrypted session, untrusted client certificate, wrong password."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from opcua_testkit import ADDRESS_SPACE, HANDLERS
from pydantic import SecretStr

from drivers.errors import SecurityError
from drivers.opcua import (
    CertificateFiles,
    OpcUaClientConfig,
    OpcUaClientSession,
    OpcUaSecurityConfig,
    OpcUaServer,
    OpcUaServerConfig,
    OpcUaServerSecurityConfig,
    SecurityMode,
    SecurityPolicy,
    generate_application_certificate,
)

CLIENT_URI = "urn:testbed:test:client"


@dataclass(frozen=True)
class Pki:
    server: CertificateFiles
    client: CertificateFiles
    stranger: CertificateFiles


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Self-signed certificates for a server, a trusted client and an untrusted one."""
    root: Path = tmp_path_factory.mktemp("pki")
    server = generate_application_certificate("urn:testbed:opcua:server", "plc")
    client = generate_application_certificate(CLIENT_URI, "client")
    stranger = generate_application_certificate(CLIENT_URI, "stranger")
    return Pki(
        server.write(root, "server"), client.write(root, "client"), stranger.write(root, "x")
    )


def _server(pki: Pki) -> OpcUaServer:
    security = OpcUaServerSecurityConfig(
        endpoints=(
            (SecurityPolicy.BASIC256SHA256, SecurityMode.SIGN),
            (SecurityPolicy.BASIC256SHA256, SecurityMode.SIGN_AND_ENCRYPT),
        ),
        certificate_path=pki.server.certificate_path,
        private_key_path=pki.server.private_key_path,
        trusted_client_certificates=(pki.client.certificate_path,),
        allow_anonymous=False,
        users={"operator": SecretStr("s3cret")},
    )
    config = OpcUaServerConfig(port=0, publish_current_time=False, security=security)
    return OpcUaServer(config, ADDRESS_SPACE, method_handlers=HANDLERS)


def _client(
    server: OpcUaServer, files: CertificateFiles, mode: SecurityMode, password: str
) -> OpcUaClientConfig:
    return OpcUaClientConfig(
        endpoint=server.endpoint,
        application_uri=CLIENT_URI,
        connect_timeout_s=5,
        username="operator",
        password=SecretStr(password),
        security=OpcUaSecurityConfig(
            policy=SecurityPolicy.BASIC256SHA256,
            mode=mode,
            certificate_path=files.certificate_path,
            private_key_path=files.private_key_path,
        ),
    )


async def test_security_cases(pki: Pki) -> None:
    """Trusted cert and password connect (Sign, SignAndEncrypt); others get SecurityError."""
    async with _server(pki) as server:
        for mode in (SecurityMode.SIGN_AND_ENCRYPT, SecurityMode.SIGN):
            async with OpcUaClientSession(_client(server, pki.client, mode, "s3cret")) as session:
                assert await session.read_value(server.node_id("Plant/Pump1/Tag")) == "P-101"
        untrusted = _client(server, pki.stranger, SecurityMode.SIGN_AND_ENCRYPT, "s3cret")
        with pytest.raises(SecurityError) as untrusted_info:
            async with OpcUaClientSession(untrusted):
                pass
        assert "BadCertificate" in str(untrusted_info.value) or "Security" in str(
            untrusted_info.value
        )
        wrong = _client(server, pki.client, SecurityMode.SIGN_AND_ENCRYPT, "guess")
        with pytest.raises(SecurityError, match="BadUserAccessDenied"):
            async with OpcUaClientSession(wrong):
                pass


def test_certificate_names_application_uri(pki: Pki) -> None:
    """Generated certificates carry the applicationUri SAN that OPC UA peers check."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pki.client.certificate_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert CLIENT_URI in san.value.get_values_for_type(x509.UniformResourceIdentifier)
    assert pki.client.private_key_path.stat().st_mode & 0o777 == 0o600


def test_security_config_validation() -> None:
    """Policy without certificate, or mismatched policy/mode, is a clear config error."""
    with pytest.raises(ValueError, match="needs certificate_path"):
        OpcUaSecurityConfig(policy=SecurityPolicy.BASIC256SHA256, mode=SecurityMode.SIGN)
    with pytest.raises(ValueError, match="do not fit"):
        OpcUaSecurityConfig(policy=SecurityPolicy.NONE, mode=SecurityMode.SIGN)
