"""OPC UA FBs against a secured server: client profiles from a device-level YAML file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from io_testkit import io_fb, new_resource, running_device
from pydantic import SecretStr

from drivers.errors import DriverConfigError
from drivers.opcua import (
    AddressSpaceSpec,
    ObjectSpec,
    OpcUaServer,
    OpcUaServerConfig,
    OpcUaServerSecurityConfig,
    SecurityMode,
    SecurityPolicy,
    VariableSpec,
    generate_application_certificate,
)
from fb.io.opcua_clients import (
    OpcUaClientProfiles,
    load_opcua_clients,
    parse_opcua_clients,
    use_opcua_clients,
)

CLIENT_URI = "urn:testbed:test:gateway"
TAG = "Plant/Pump1/Tag"
SPACE = AddressSpaceSpec(nodes=(ObjectSpec(name="Plant", children=(
    ObjectSpec(name="Pump1", children=(
        VariableSpec(name="Tag", data_type="String", initial="P-101"),)),)),))


@dataclass(frozen=True)
class Pki:
    folder: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Server and client certificates (cryptography) written under pki/ of a config folder."""
    root = tmp_path_factory.mktemp("device")
    (root / "pki").mkdir()
    generate_application_certificate("urn:testbed:opcua:server", "plc").write(
        root / "pki", "server")
    generate_application_certificate(CLIENT_URI, "gateway").write(root / "pki", "gateway")
    generate_application_certificate(CLIENT_URI, "stranger").write(root / "pki", "stranger")
    return Pki(root)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(pki: Pki) -> AsyncIterator[OpcUaServer]:
    """A server offering only Basic256Sha256 endpoints, trusting the gateway, no anonymous."""
    pem = pki.folder / "pki"
    security = OpcUaServerSecurityConfig(
        endpoints=((SecurityPolicy.BASIC256SHA256, SecurityMode.SIGN),
                   (SecurityPolicy.BASIC256SHA256, SecurityMode.SIGN_AND_ENCRYPT)),
        certificate_path=pem / "server.pem",
        private_key_path=pem / "server.key.pem",
        trusted_client_certificates=(pem / "gateway.pem",),
        allow_anonymous=False,
        users={"operator": SecretStr("s3cret")},
    )
    config = OpcUaServerConfig(port=0, publish_current_time=False, security=security)
    async with OpcUaServer(config, SPACE) as srv:
        yield srv


def _profile_yaml(name: str, endpoint: str, *, mode: str = "SignAndEncrypt",
                  password: str = "s3cret", cert: str = "gateway") -> str:
    return f"""\
  {name}:
    endpoint: {endpoint}
    application_uri: {CLIENT_URI}
    username: operator
    password: {password}
    security:
      policy: Basic256Sha256
      mode: {mode}
      certificate_path: pki/{cert}.pem
      private_key_path: pki/{cert}.key.pem
"""


def _profiles(pki: Pki, *entries: str) -> OpcUaClientProfiles:
    path = pki.folder / "opcua_clients.yaml"
    path.write_text("clients:\n" + "".join(entries), encoding="utf-8")
    return load_opcua_clients(path)


async def _init_read(profiles: OpcUaClientProfiles, endpoint: str, node: str
                     ) -> tuple[dict[str, object], dict[str, object] | None]:
    """INIT then one REQ of an OPCUA_READ_1: the INITO values and the CNF values (if any)."""
    async with running_device() as device:
        use_opcua_clients(device, profiles)
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=endpoint, NODE_1=node)
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (init,) = await rec.wait("Read", "INITO", timeout_s=8.0)
        if init.values["QO"] is not True:
            return init.values, None
        (cnf,) = await rec.wait("Read", "CNF")
        return init.values, cnf.values


@pytest.mark.asyncio(loop_scope="module")
async def test_secured_read_by_endpoint_match(pki: Pki, server: OpcUaServer) -> None:
    """An unchanged OPCUA_READ (ENDPOINT = the URL) reads over SignAndEncrypt + password."""
    profiles = _profiles(pki, _profile_yaml("plc", server.endpoint))
    init, cnf = await _init_read(profiles, server.endpoint, server.node_id(TAG))
    assert init == {"QO": True, "STATUS": "OK"}
    assert cnf == {"QO": True, "STATUS": "OK", "RD_1": "P-101"}


@pytest.mark.asyncio(loop_scope="module")
async def test_secured_read_by_profile_name(pki: Pki, server: OpcUaServer) -> None:
    """ENDPOINT `@name` picks one of two profiles of the same endpoint (Sign here)."""
    profiles = _profiles(pki, _profile_yaml("signed", server.endpoint, mode="Sign"),
                         _profile_yaml("wrong", server.endpoint, password="guess"))
    init, cnf = await _init_read(profiles, "@signed", server.browse_path(TAG))
    assert init == {"QO": True, "STATUS": "OK"}
    assert cnf is not None
    assert cnf["RD_1"] == "P-101"


@pytest.mark.asyncio(loop_scope="module")
async def test_wrong_password_is_a_status_not_an_exception(
    pki: Pki, server: OpcUaServer
) -> None:
    """A refused user gives INITO QO=FALSE, STATUS BadUserAccessDenied; the device runs on."""
    profiles = _profiles(pki, _profile_yaml("plc", server.endpoint, password="guess"))
    init, cnf = await _init_read(profiles, server.endpoint, server.node_id(TAG))
    assert init == {"QO": False, "STATUS": "BadUserAccessDenied"}
    assert cnf is None


@pytest.mark.asyncio(loop_scope="module")
async def test_untrusted_certificate_is_refused_with_a_status(
    pki: Pki, server: OpcUaServer
) -> None:
    """A client certificate outside the server's trust list: INITO QO=FALSE, a Bad status."""
    profiles = _profiles(pki, _profile_yaml("plc", server.endpoint, cert="stranger"))
    init, _ = await _init_read(profiles, server.endpoint, server.node_id(TAG))
    assert init == {"QO": False, "STATUS": "BadCertificateUntrusted"}


@pytest.mark.asyncio(loop_scope="module")
async def test_no_profile_means_no_security_and_the_server_refuses(
    server: OpcUaServer,
) -> None:
    """Without a profile the FB connects unsecured, which this server does not offer."""
    init, _ = await _init_read(OpcUaClientProfiles(), server.endpoint, server.node_id(TAG))
    assert init == {"QO": False, "STATUS": "BadSecurityPolicyRejected"}


@pytest.mark.asyncio(loop_scope="module")
async def test_unusable_profiles_fail_init_with_invalid_id(
    pki: Pki, server: OpcUaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown @name, an unset password variable or an ambiguous endpoint: INVALID_ID."""
    env_entry = _profile_yaml("envpw", "opc.tcp://127.0.0.1:1/x").replace(
        "password: s3cret", "password_env: TESTBED_TEST_NO_SUCH_VAR")
    profiles = _profiles(pki, env_entry, _profile_yaml("a", server.endpoint),
                         _profile_yaml("b", server.endpoint))
    monkeypatch.delenv("TESTBED_TEST_NO_SUCH_VAR", raising=False)
    cases = {
        "@nope": "no OPC UA client profile 'nope'",
        "@envpw": "TESTBED_TEST_NO_SUCH_VAR is not set",
        server.endpoint: "several OPC UA client profiles",
    }
    for endpoint, reason in cases.items():
        init, _ = await _init_read(profiles, endpoint, server.node_id(TAG))
        assert init["QO"] is False
        status = str(init["STATUS"])
        assert status.startswith("INVALID_ID: ")
        assert reason in status


def test_profile_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """A bad mode and a password without user are reported as file:line: field: why."""
    path = tmp_path / "clients.yaml"
    path.write_text("clients:\n  plc:\n    endpoint: opc.tcp://h:1\n    security:\n"
                    "      policy: Basic256Sha256\n      mode: Encrypt\n", encoding="utf-8")
    with pytest.raises(DriverConfigError, match=rf"{path}:6: clients\.plc\.security\.mode"):
        load_opcua_clients(path)
    with pytest.raises(DriverConfigError, match="username needs password"):
        parse_opcua_clients("clients:\n  plc:\n    endpoint: opc.tcp://h:1\n"
                            "    password: x\n")


def test_relative_certificate_paths_are_taken_from_the_file_folder(pki: Pki) -> None:
    """certificate_path: pki/gateway.pem in /cfg/clients.yaml means /cfg/pki/gateway.pem."""
    profiles = _profiles(pki, _profile_yaml("plc", "opc.tcp://h:1"))
    security = profiles.named("plc").security
    assert security.certificate_path == pki.folder.resolve() / "pki" / "gateway.pem"
    assert security.certificate_path.is_file()


@pytest.mark.asyncio(loop_scope="module")
async def test_forte_id_client_uses_the_endpoint_profile(pki: Pki, server: OpcUaServer) -> None:
    """A 4diac CLIENT_0_1 with `opc_ua[READ;<endpoint>#;...]` reads through the profile."""
    profiles = _profiles(pki, _profile_yaml("plc", server.endpoint))
    async with running_device() as device:
        use_opcua_clients(device, profiles)
        res, rec = new_resource(device)
        idx = server.namespace_index
        io_fb(res, "Read", "CLIENT_0_1",
              ID=f"opc_ua[READ;{server.endpoint}#;,{idx}:s=Plant.Pump1.Tag]")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (init,) = await rec.wait("Read", "INITO", timeout_s=8.0)
        assert init.values == {"QO": True, "STATUS": "OK"}
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is True
        assert cnf.values["RD_1"] == "P-101"
