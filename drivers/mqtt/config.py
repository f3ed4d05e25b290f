"""Configuration of the MQTT client: frozen pydantic models validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "MqttClientConfig",
    "MqttProtocol",
    "ReconnectConfig",
    "TlsConfig",
    "WillConfig",
]

MqttProtocol = Literal["3.1.1", "5"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsConfig(_Frozen):
    """Server trust and optional client certificate (mutual TLS)."""

    ca_file: Path | None = None
    """PEM CA bundle that signs the broker's certificate; None trusts the system store."""
    cert_file: Path | None = None
    """PEM client certificate, for brokers that require one."""
    key_file: Path | None = None
    """PEM private key of `cert_file`."""
    check_hostname: bool = True
    """Verify that the broker's certificate names the host we dialled."""

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file must be given together")
        return self


class WillConfig(_Frozen):
    """Last will: the broker publishes it when the client vanishes without DISCONNECT."""

    topic: str = Field(min_length=1)
    payload: bytes = b""
    qos: Literal[0, 1, 2] = 1
    retain: bool = False


class ReconnectConfig(_Frozen):
    """Jittered exponential backoff between connection attempts."""

    initial_delay_s: float = Field(default=0.5, gt=0)
    max_delay_s: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.5, ge=0, le=1)
    """Fraction of each delay that is randomised (0: none, 1: full jitter)."""


class MqttClientConfig(_Frozen):
    """Everything one MQTT connection needs; every network wait has a default deadline here."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = ""
    """Empty: a random id per client object (required non-empty for persistent sessions)."""
    protocol: MqttProtocol = "3.1.1"
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    will: WillConfig | None = None
    keepalive_s: int = Field(default=30, ge=1, le=65535)
    clean_session: bool = True
    """MQTT 3.1.1 clean session / MQTT 5 clean start."""
    session_expiry_s: int = Field(default=0, ge=0)
    """MQTT 5 only: how long the broker keeps the session after a disconnect."""
    connect_timeout_s: float = Field(default=5.0, gt=0)
    publish_timeout_s: float = Field(default=10.0, gt=0)
    """Deadline for room in the in-flight window."""
    subscribe_timeout_s: float = Field(default=5.0, gt=0)
    close_timeout_s: float = Field(default=2.0, gt=0)
    max_inflight: int = Field(default=64, ge=1, le=65535)
    """QoS 1 messages sent and not yet acknowledged, at most."""
    reconnect: ReconnectConfig = ReconnectConfig()
    retry_on_security_error: bool = False
    """Keep retrying after a rejected credential or certificate (default: fail fast)."""

    @model_validator(mode="after")
    def _persistent_session_needs_id(self) -> Self:
        if not self.clean_session and not self.client_id:
            raise ValueError("clean_session=False needs a fixed client_id")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        return self
