"""Gateway config: defaults, relative paths, and errors that name file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.gateway.config import load_gateway_config, parse_gateway_config

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_valid() -> None:
    """configs/gateway.yaml validates; the boot file resolves next to it."""
    config = load_gateway_config(REPO / "configs" / "gateway.yaml")
    dev = config.devices[0]
    assert dev.management.host == "127.0.0.1"
    assert dev.management.port == 61499
    assert dev.persistence.boot_file == REPO / "configs" / "deployed.fboot"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    """Only a device name is needed; the port binds to localhost by default."""
    config = load_gateway_config(write(tmp_path, "devices:\n  - name: d1\n"))
    assert config.devices[0].management.host == "127.0.0.1"
    assert config.devices[0].persistence.boot_file is None
    assert config.logging.format == "json"


def test_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    """A misspelt key is refused with its file, line and dotted field."""
    path = write(tmp_path, "devices:\n  - name: d1\n    managment:\n      port: 1\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert f"{path}:3: devices[0].managment" in str(err.value)


def test_bad_allow_entry_names_line(tmp_path: Path) -> None:
    """An allow-list entry that is no address or network points at its line."""
    path = write(tmp_path, "devices:\n  - name: d1\n    management:\n"
                           "      allow: [10.0.0.0/8, not-an-ip]\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert f"{path}:4: devices[0].management.allow" in str(err.value)
    assert "not-an-ip" in str(err.value)


def test_out_of_range_port(tmp_path: Path) -> None:
    """A port beyond 65535 is refused at its line."""
    path = write(tmp_path, "devices:\n  - name: d1\n    management:\n      port: 70000\n")
    with pytest.raises(ConfigError, match=r":4: devices\[0\]\.management\.port"):
        load_gateway_config(path)


def test_missing_type_directory(tmp_path: Path) -> None:
    """A type directory that does not exist is named with its line."""
    path = write(tmp_path, "devices:\n  - name: d1\ntypes:\n  - ./types\n  - ./nowhere\n")
    (tmp_path / "types").mkdir()
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert f"{path}:5: types[1]" in str(err.value)
    assert "nowhere" in str(err.value)


def test_duplicate_ports_refused() -> None:
    """Two devices on one management host:port are refused."""
    text = ("devices:\n  - name: a\n    management: {port: 7000}\n"
            "  - name: b\n    management: {port: 7000}\n")
    with pytest.raises(ConfigError, match="share a management host:port"):
        parse_gateway_config(text, "g.yaml", Path.cwd())


def test_invalid_yaml_names_line() -> None:
    """Broken YAML is reported with its line."""
    with pytest.raises(ConfigError, match=r"g\.yaml:[34]: .*invalid YAML"):
        parse_gateway_config("devices:\n  - name: a\n  - [unclosed\n", "g.yaml", Path.cwd())


def test_serve_check_reports_errors(tmp_path: Path) -> None:
    """`testbed serve --check` exits 2 and prints file:line for an invalid config."""
    path = write(tmp_path, "devices:\n  - name: d1\n    queue_capacity: 0\n")
    result = subprocess.run([sys.executable, "-m", "testbed.cli", "serve", "--config",
                             str(path), "--check"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert f"{path}:3: devices[0].queue_capacity" in result.stderr


def test_missing_opcua_clients_file_names_its_line(tmp_path: Path) -> None:
    """A device's OPC UA client profile file that does not exist is named with its line."""
    path = write(tmp_path, "devices:\n  - name: d1\n    opcua_clients: clients.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert f"{path}:3: devices[0].opcua_clients" in str(err.value)


def test_device_host_attaches_opcua_client_profiles(tmp_path: Path) -> None:
    """The host's device gets the profiles; the FBs' session pool finds them by endpoint."""
    from fb.io.opcua_clients import opcua_clients_of
    from fb.io.pool import pool_for
    from testbed.gateway.daemon import DeviceHost
    from testbed.library import TypeLibrary

    (tmp_path / "clients.yaml").write_text(
        "clients:\n  plc1:\n    endpoint: opc.tcp://127.0.0.1:4840\n"
        "    username: operator\n    password: secret\n", encoding="utf-8")
    path = write(tmp_path, "devices:\n  - name: d1\n    opcua_clients: clients.yaml\n")
    config = load_gateway_config(path)
    host = DeviceHost(config.devices[0], TypeLibrary.with_native_types())
    found = opcua_clients_of(pool_for(host.device)).for_endpoint("opc.tcp://127.0.0.1:4840")
    assert found is not None
    assert found[0] == "plc1"


def test_bad_opcua_clients_file_is_a_config_error(tmp_path: Path) -> None:
    """A malformed profile file stops the host with file:line: field."""
    from testbed.gateway.daemon import DeviceHost
    from testbed.library import TypeLibrary

    clients = tmp_path / "clients.yaml"
    clients.write_text("clients:\n  plc1:\n    endpoint: opc.tcp://h:4840\n    colour: red\n",
                       encoding="utf-8")
    path = write(tmp_path, "devices:\n  - name: d1\n    opcua_clients: clients.yaml\n")
    config = load_gateway_config(path)
    with pytest.raises(ConfigError, match=rf"{clients}:4: .*colour"):
        DeviceHost(config.devices[0], TypeLibrary.with_native_types())
