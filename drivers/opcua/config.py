"""Validated configuration for the OPC UA client session and the simulated-PLC server.

Frozen pydantic models with ``extra="forbid"``: a typo in a YAML key is an error
naming the field, not a silently ignored option. Every network wait of the
session takes its default deadline from here.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "OpcUaClientConfig",
    "OpcUaReconnectConfig",
    "OpcUaSecurityConfig",
    "OpcUaServerConfig",
    "OpcUaServerSecurityConfig",
    "OpcUaSubscriptionConfig",
    "OverflowPolicy",
    "SecurityMode",
    "SecurityPolicy",
]

_ENDPOINT_SCHEME = "opc.tcp://"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecurityPolicy(StrEnum):
    """OPC UA security policies the driver supports."""

    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128_Sha256_RsaOaep"


class SecurityMode(StrEnum):
    """OPC UA message security modes."""

    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OverflowPolicy(StrEnum):
    """What a full notification queue does with the next notification."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    BLOCK = "block"


def _check_pair(policy: SecurityPolicy, mode: SecurityMode) -> None:
    if (policy is SecurityPolicy.NONE) != (mode is SecurityMode.NONE):
        raise ValueError(
            f"security policy {policy.value} and mode {mode.value} do not fit: "
            "policy None goes with mode None only"
        )


class OpcUaSecurityConfig(_Frozen):
    """Client-side channel security: policy, mode and our application certificate."""

    policy: SecurityPolicy = SecurityPolicy.NONE
    mode: SecurityMode = SecurityMode.NONE
    certificate_path: Path | None = None
    private_key_path: Path | None = None
    server_certificate_path: Path | None = Field(
        default=None,
        description="pin the server certificate; None takes it from the server's endpoints",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_pair(self.policy, self.mode)
        if self.policy is not SecurityPolicy.NONE and (
            self.certificate_path is None or self.private_key_path is None
        ):
            raise ValueError(
                f"security policy {self.policy.value} needs certificate_path and private_key_path"
            )
        return self


class OpcUaReconnectConfig(_Frozen):
    """Exponential backoff between reconnect attempts after the server went away."""

    enabled: bool = True
    initial_delay_s: float = Field(default=0.25, gt=0)
    max_delay_s: float = Field(default=10.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_delay_s < self.initial_delay_s:
            raise ValueError("max_delay_s must be >= initial_delay_s")
        return self


class OpcUaClientConfig(_Frozen):
    """One client session to one server endpoint."""

    endpoint: str
    application_uri: str = "urn:testbed:opcua:client"
    application_name: str = "testbed OPC UA client"
    connect_timeout_s: float = Field(default=10.0, gt=0)
    request_timeout_s: float = Field(default=5.0, gt=0)
    close_timeout_s: float = Field(default=2.0, gt=0)
    session_timeout_s: float = Field(default=60.0, gt=0)
    watchdog_interval_s: float = Field(
        default=1.0, gt=0, description="how often an idle connection is probed"
    )
    username: str | None = None
    password: SecretStr | None = None
    security: OpcUaSecurityConfig = OpcUaSecurityConfig()
    reconnect: OpcUaReconnectConfig = OpcUaReconnectConfig()
    default_namespace: int = Field(
        default=0, ge=0, le=0xFFFF, description="namespace of unprefixed browse-path names"
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_scheme(cls, value: str) -> str:
        if not value.startswith(_ENDPOINT_SCHEME) or len(value) == len(_ENDPOINT_SCHEME):
            raise ValueError(f"endpoint {value!r} must look like opc.tcp://host:port[/path]")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class OpcUaSubscriptionConfig(_Frozen):
    """A subscription: server-side intervals and the client-side bounded queue."""

    publishing_interval_ms: float = Field(default=100.0, gt=0)
    sampling_interval_ms: float | None = Field(
        default=None, ge=0, description="None samples at the publishing interval"
    )
    server_queue_size: int = Field(default=1, ge=1, description="per monitored item, on the server")
    queue_capacity: int = Field(default=1000, ge=1, description="notifications held for the caller")
    overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST


class OpcUaServerSecurityConfig(_Frozen):
    """Server-side security: offered endpoints, certificate, client trust list and users."""

    endpoints: tuple[tuple[SecurityPolicy, SecurityMode], ...] = (
        (SecurityPolicy.NONE, SecurityMode.NONE),
    )
    certificate_path: Path | None = None
    private_key_path: Path | None = None
    trusted_client_certificates: tuple[Path, ...] = Field(
        default=(), description="only these client certificates pass on secure endpoints"
    )
    allow_anonymous: bool = True
    users: dict[str, SecretStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.endpoints:
            raise ValueError("at least one endpoint (policy, mode) is needed")
        for policy, mode in self.endpoints:
            _check_pair(policy, mode)
        secure = any(policy is not SecurityPolicy.NONE for policy, _ in self.endpoints)
        if secure and (self.certificate_path is None or self.private_key_path is None):
            raise ValueError("secure endpoints need certificate_path and private_key_path")
        if not self.allow_anonymous and not self.users:
            raise ValueError("allow_anonymous=False needs at least one user")
        return self


class OpcUaServerConfig(_Frozen):
    """A simulated PLC's OPC UA server."""

    host: str = "127.0.0.1"
    port: int = Field(default=4840, ge=0, le=65535, description="0 picks a free port")
    path: str = "/testbed/server"
    name: str = "testbed simulated PLC"
    application_uri: str = "urn:testbed:opcua:server"
    namespace_uri: str = "urn:testbed:plant"
    publish_current_time: bool = Field(
        default=True,
        description="update Server/ServerStatus/CurrentTime each second (stop waits up to 1 s)",
    )
    security: OpcUaServerSecurityConfig = OpcUaServerSecurityConfig()
