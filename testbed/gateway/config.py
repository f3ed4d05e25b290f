"""The gateway daemon's configuration (`testbed serve --config gateway.yaml`).

Frozen pydantic models (`extra="forbid"`), read through `drivers.yamllines` so every
error reads `file:line: field: message`. Relative paths (type directories, the
persisted boot file) are taken from the config file's folder.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.yamllines import YamlError, YamlIssue, line_of, validate_model
from testbed.errors import ConfigError

__all__ = ["DeviceConfig", "GatewayConfig", "LoggingConfig", "ManagementConfig",
           "PersistenceConfig", "ResourceConfig", "load_gateway_config",
           "parse_gateway_config"]

_NAME = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ManagementConfig(_Frozen):
    """The FORTE-compatible management port of one device."""

    host: str = "127.0.0.1"
    port: int = Field(default=61499, ge=0, le=65535)
    allow: tuple[str, ...] = ()
    """Peer addresses or networks (CIDR) allowed to connect; empty allows any peer."""
    max_request_bytes: int = Field(default=65535, ge=64, le=65535)
    request_deadline_s: float = Field(default=10.0, gt=0)
    idle_timeout_s: float | None = Field(default=600.0, gt=0)
    max_connections: int = Field(default=16, ge=1, le=1024)

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value


class ResourceConfig(_Frozen):
    """A resource created at start (unless the restored deployment already has it)."""

    name: str = Field(pattern=_NAME)
    type: Literal["EMB_RES", "RMT_RES", "PANEL_RESOURCE", "RESOURCE"] = "EMB_RES"


class PersistenceConfig(_Frozen):
    """Where the deployed application is kept as a boot file (None: not kept)."""

    boot_file: Path | None = None
    write_delay_s: float = Field(default=0.2, ge=0, le=60)
    """Quiet time after a change before the file is written (a deployment is many requests)."""


class DeviceConfig(_Frozen):
    name: str = Field(pattern=_NAME)
    management: ManagementConfig = Field(default_factory=ManagementConfig)
    resources: tuple[ResourceConfig, ...] = ()
    persistence: PersistenceConfig = Field(default_factory=PersistenceConfig)
    queue_capacity: int = Field(default=65_536, ge=1)
    external_capacity: int = Field(default=4_096, ge=1)
    opcua_clients: Path | None = None
    """A YAML file of OPC UA client profiles (endpoint, user, certificates: see
    `fb.io.opcua_clients`) the device's OPC UA FBs use to reach secured servers."""

    @model_validator(mode="after")
    def _unique_resources(self) -> DeviceConfig:
        names = [r.name for r in self.resources]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"resource names repeat: {', '.join(sorted(dup))}")
        return self


class LoggingConfig(_Frozen):
    format: Literal["console", "json"] = "json"
    level: Literal["debug", "info", "warning", "error"] = "info"


class GatewayConfig(_Frozen):
    """A gateway: devices (each with its management port), type directories, logging."""

    devices: tuple[DeviceConfig, ...] = Field(min_length=1)
    types: tuple[Path, ...] = ()
    """Directories of 4diac type files (.fbt/.adp/.dtp/.sub) added to the native library."""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _unique(self) -> GatewayConfig:
        names = [d.name for d in self.devices]
        if len(set(names)) != len(names):
            raise ValueError("device names must be unique")
        ports = [(d.management.host, d.management.port) for d in self.devices
                 if d.management.port != 0]
        if len(set(ports)) != len(ports):
            raise ValueError("two devices share a management host:port")
        files = [d.persistence.boot_file for d in self.devices if d.persistence.boot_file]
        if len(set(files)) != len(files):
            raise ValueError("two devices share a persistence boot_file")
        return self


def parse_gateway_config(text: str, source: str = "<gateway config>",
                         base: Path | None = None) -> GatewayConfig:
    """Validate YAML text; relative paths resolve against `base`; ConfigError names file:line."""
    try:
        config, lines = validate_model(GatewayConfig, text, source)
    except YamlError as exc:
        raise ConfigError(str(exc)) from exc
    base = base or Path.cwd()
    issues: list[YamlIssue] = []
    types = tuple(p if p.is_absolute() else base / p for p in config.types)
    for i, path in enumerate(types):
        if not path.is_dir():
            loc: tuple[str | int, ...] = ("types", i)
            issues.append(YamlIssue(loc, f"type directory {path} does not exist",
                                    line_of(lines, loc)))
    devices = []
    for i, dev in enumerate(config.devices):
        boot = dev.persistence.boot_file
        if boot is not None and not boot.is_absolute():
            boot = base / boot
        if boot is not None and not boot.parent.is_dir():
            loc = ("devices", i, "persistence", "boot_file")
            issues.append(YamlIssue(loc, f"folder {boot.parent} does not exist",
                                    line_of(lines, loc)))
        clients = dev.opcua_clients
        if clients is not None and not clients.is_absolute():
            clients = base / clients
        if clients is not None and not clients.is_file():
            loc = ("devices", i, "opcua_clients")
            issues.append(YamlIssue(loc, f"file {clients} does not exist", line_of(lines, loc)))
        devices.append(dev.model_copy(update={
            "persistence": dev.persistence.model_copy(update={"boot_file": boot}),
            "opcua_clients": clients}))
    if issues:
        raise ConfigError(str(YamlError(source, issues)))
    return config.model_copy(update={"types": types, "devices": tuple(devices)})


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Read and validate a gateway config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    return parse_gateway_config(text, str(file), file.resolve().parent)
