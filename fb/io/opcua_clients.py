"""Device-level OPC UA client profiles: how the I/O FBs reach secured servers.

FORTE keeps OPC UA security out of the FB interface (a 4diac application names only
the endpoint) and reads certificates and credentials from a configuration file of the
runtime. This module is that file for a testbed device: a YAML map of named profiles,
each an endpoint with its user, password and channel security::

    clients:
      plc1:
        endpoint: opc.tcp://10.0.0.5:4840/testbed/server
        application_uri: urn:testbed:gateway      # must match our certificate's SAN URI
        username: operator
        password_env: PLC1_PASSWORD               # or `password: ...` (kept as a secret)
        security:
          policy: Basic256Sha256                  # None | Basic256Sha256 | Aes128_Sha256_RsaOaep
          mode: SignAndEncrypt                    # None | Sign | SignAndEncrypt
          certificate_path: pki/gateway.pem       # relative paths: from this file's folder
          private_key_path: pki/gateway.key
          server_certificate_path: pki/plc1.pem   # optional pin

`use_opcua_clients(device, profiles)` attaches the profiles to a device. An FB whose
ENDPOINT equals a profile's endpoint then uses that profile (FORTE-style: unchanged
4diac applications, the same holds for `opc_ua[...]` IDs of CLIENT/SUBSCRIBE FBs);
ENDPOINT `@plc1` names a profile explicitly (needed when two profiles share an
endpoint, e.g. two users: matching by endpoint is then refused as ambiguous).
Sessions are shared per (endpoint, profile).
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from drivers.errors import DriverConfigError
from drivers.opcua import OpcUaSecurityConfig
from drivers.yamllines import YamlError, YamlIssue, validate_model
from fb.io.pool import IoPool, pool_for

__all__ = [
    "OpcUaClientProfile",
    "OpcUaClientProfiles",
    "load_opcua_clients",
    "opcua_clients_of",
    "parse_opcua_clients",
    "use_opcua_clients",
]

PROFILE_PREFIX = "@"
"""ENDPOINT text starting with this names a profile instead of a URL."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpcUaClientProfile(_Frozen):
    """One server as the device's OPC UA clients reach it."""

    endpoint: str = Field(min_length=1)
    application_uri: str | None = Field(
        default=None, description="our ApplicationUri; must match the certificate's SAN URI"
    )
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = Field(
        default=None, description="environment variable holding the password"
    )
    security: OpcUaSecurityConfig = OpcUaSecurityConfig()

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is not None and self.password_env is not None:
            raise ValueError("give password or password_env, not both")
        has_secret = self.password is not None or self.password_env is not None
        if (self.username is not None) == has_secret:
            return self
        raise ValueError("username needs password or password_env (and the other way round)")

    def secret(self) -> SecretStr | None:
        """The password (read from the environment for `password_env`)."""
        if self.password_env is None:
            return self.password
        value = os.environ.get(self.password_env)
        if value is None:
            raise DriverConfigError(
                f"OPC UA profile for {self.endpoint}: environment variable "
                f"{self.password_env} is not set"
            )
        return SecretStr(value)

    def relative_to(self, folder: Path) -> OpcUaClientProfile:
        """The profile with relative certificate paths taken from `folder`."""
        sec = self.security

        def resolve(path: Path | None) -> Path | None:
            return path if path is None or path.is_absolute() else folder / path

        security = sec.model_copy(update={
            "certificate_path": resolve(sec.certificate_path),
            "private_key_path": resolve(sec.private_key_path),
            "server_certificate_path": resolve(sec.server_certificate_path),
        })
        return self.model_copy(update={"security": security})


class OpcUaClientProfiles(_Frozen):
    """Named client profiles of one device (the YAML file's content)."""

    clients: dict[str, OpcUaClientProfile] = Field(default_factory=dict)

    def named(self, name: str) -> OpcUaClientProfile:
        """The profile `name`; DriverConfigError naming the known ones otherwise."""
        try:
            return self.clients[name]
        except KeyError:
            known = ", ".join(sorted(self.clients)) or "none"
            raise DriverConfigError(
                f"no OPC UA client profile {name!r} (known: {known})"
            ) from None

    def for_endpoint(self, endpoint: str) -> tuple[str, OpcUaClientProfile] | None:
        """The (name, profile) whose endpoint is `endpoint`, or None; DriverConfigError
        when several profiles share it (the FB must then name one as `@name`)."""
        wanted = endpoint.rstrip("/")
        found = [(name, profile) for name, profile in self.clients.items()
                 if profile.endpoint.rstrip("/") == wanted]
        if len(found) > 1:
            names = ", ".join(f"@{name}" for name, _ in found)
            raise DriverConfigError(f"several OPC UA client profiles for {endpoint}: "
                                    f"name one as ENDPOINT ({names})")
        return found[0] if found else None

    def resolve(self, text: str) -> tuple[str, str | None]:
        """ENDPOINT text -> (endpoint URL, profile name or None)."""
        if text.startswith(PROFILE_PREFIX):
            name = text[len(PROFILE_PREFIX):]
            return self.named(name).endpoint, name
        found = self.for_endpoint(text)
        return text, found[0] if found is not None else None


_NO_PROFILES = OpcUaClientProfiles()


def parse_opcua_clients(text: str, source: str = "<opcua clients>",
                        folder: Path | None = None) -> OpcUaClientProfiles:
    """Validate profile YAML; errors name `source`, the line and the field."""
    profiles, _ = validate_model(OpcUaClientProfiles, text, source)
    if folder is None:
        return profiles
    return OpcUaClientProfiles(clients={
        name: profile.relative_to(folder) for name, profile in profiles.clients.items()})


def load_opcua_clients(path: str | Path) -> OpcUaClientProfiles:
    """Read and validate a profile file; relative paths are taken from its folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(str(file), [YamlIssue((), f"cannot read: {exc.strerror}")]) from exc
    return parse_opcua_clients(text, str(file), file.resolve().parent)


_REGISTRY: weakref.WeakKeyDictionary[IoPool, OpcUaClientProfiles] = (
    weakref.WeakKeyDictionary())


def use_opcua_clients(scope: object, profiles: OpcUaClientProfiles) -> None:
    """Give the device (or device-less resource) `scope` these client profiles.

    Takes effect for sessions opened afterwards (an FB's next INIT).
    """
    _REGISTRY[pool_for(scope)] = profiles


def opcua_clients_of(pool: IoPool) -> OpcUaClientProfiles:
    """The profiles attached to the device owning `pool` (none attached: empty)."""
    return _REGISTRY.get(pool, _NO_PROFILES)
