"""`MosquittoBroker`: a real mosquitto on free loopback ports, for tests and development.

It writes a config (plain listener; optionally a TLS listener with a generated CA, server and
client certificate, and a password file), starts `mosquitto -c`, and waits until the ports accept
connections. `stopped()` takes the broker down and brings it back on the same ports and
persistence directory, to inject an outage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from drivers.errors import DriverConfigError, DriverError, DriverTimeout
from drivers.mqtt.pki import TestPki, generate_test_pki

__all__ = [
    "MosquittoBroker",
    "MosquittoConfig",
    "MosquittoState",
    "find_mosquitto",
    "mosquitto_password_line",
]

_log = structlog.get_logger(__name__)

_SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


def find_mosquitto() -> Path | None:
    """The mosquitto executable on PATH or in the usual sbin folders, if installed."""
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    for candidate in _SEARCH:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def mosquitto_password_line(username: str, password: str, iterations: int = 101) -> str:
    """One `password_file` line in mosquitto 2's `$7$` format (PBKDF2-HMAC-SHA512)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"{username}:$7${iterations}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def _free_port(host: str) -> int:
    # mosquitto cannot listen on port 0 and report it: take a free port, release it, hand it on
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class MosquittoConfig(BaseModel):
    """What the generated mosquitto.conf contains."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executable: Path | None = None
    """None: `find_mosquitto()`."""
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port."""
    tls: bool = False
    """Add a TLS listener with generated certificates (see `MosquittoBroker.pki`)."""
    tls_port: int = Field(default=0, ge=0, le=65535)
    require_client_certificate: bool = True
    users: dict[str, SecretStr] = Field(default_factory=dict)
    """When set, anonymous clients are refused and these username/password pairs accepted."""
    persistence: bool = False
    """Keep sessions and queued messages across `stopped()` (saved on shutdown)."""
    max_queued_messages: int = Field(default=100_000, ge=0)
    work_dir: Path | None = None
    """Config, certificates, log and persistence; None: a temporary directory, removed at close."""
    start_timeout_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=5.0, gt=0)


class MosquittoState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"
    """Inside `stopped()`: the process is down, ports and files are kept."""
    CLOSING = "closing"
    CLOSED = "closed"


class MosquittoBroker:
    """A mosquitto process on loopback; a one-shot async context manager."""

    def __init__(self, config: MosquittoConfig | None = None) -> None:
        self._config = config or MosquittoConfig()
        self._state = MosquittoState.NEW
        self._process: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._dir = Path()
        self._port = 0
        self._tls_port = 0
        self._pki: TestPki | None = None
        self.starts = 0

    # ---- properties ---------------------------------------------------------------------------

    @property
    def state(self) -> MosquittoState:
        return self._state

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def port(self) -> int:
        return self._port

    @property
    def tls_port(self) -> int:
        if not self._config.tls:
            raise DriverConfigError("this broker has no TLS listener (MosquittoConfig.tls=False)")
        return self._tls_port

    @property
    def pki(self) -> TestPki:
        if self._pki is None:
            raise DriverConfigError("this broker has no TLS listener (MosquittoConfig.tls=False)")
        return self._pki

    @property
    def log_path(self) -> Path:
        return self._dir / "mosquitto.log"

    # ---- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not MosquittoState.NEW:
            raise RuntimeError(f"MosquittoBroker is one-shot; state is {self._state.value}")
        config = self._config
        executable = config.executable or find_mosquitto()
        if executable is None:
            self._state = MosquittoState.CLOSED
            raise DriverConfigError("mosquitto is not installed (apt-get install mosquitto)")
        self._executable = executable
        if config.work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="testbed-mosquitto-")
            self._dir = Path(self._tmp.name)
        else:
            self._dir = config.work_dir
            self._dir.mkdir(parents=True, exist_ok=True)
        try:
            if config.tls:
                self._pki = generate_test_pki(self._dir / "pki", name="mosquitto")
            await self._start_with_port_retry()
        except BaseException:
            await self._terminate()
            self._cleanup_dir()
            self._state = MosquittoState.CLOSED
            raise
        self._state = MosquittoState.RUNNING
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL past stop_timeout_s). Idempotent."""
        if self._state in (MosquittoState.CLOSING, MosquittoState.CLOSED):
            return
        if self._state is MosquittoState.NEW:
            self._state = MosquittoState.CLOSED
            return
        self._state = MosquittoState.CLOSING
        try:
            await self._terminate()
        finally:
            self._cleanup_dir()
            self._state = MosquittoState.CLOSED

    @contextlib.asynccontextmanager
    async def stopped(self) -> AsyncIterator[None]:
        """Outage: mosquitto is down inside the block, back on the same ports after it."""
        if self._state is not MosquittoState.RUNNING:
            raise DriverError(f"mosquitto is {self._state.value}, cannot stop it")
        await self._terminate()
        self._state = MosquittoState.STOPPED
        _log.info("mosquitto_stopped", port=self._port)
        try:
            yield
        finally:
            if self._state is MosquittoState.STOPPED:
                await self._start()
                self._state = MosquittoState.RUNNING

    # ---- process ------------------------------------------------------------------------------

    async def _start_with_port_retry(self) -> None:
        config = self._config
        for attempt in range(3):
            self._port = config.port or _free_port(config.host)
            if config.tls:
                self._tls_port = config.tls_port or _free_port(config.host)
            try:
                await self._start()
                return
            except DriverError:
                # a picked port may have been taken between probe and bind: pick again
                fixed = config.port and (config.tls_port or not config.tls)
                if fixed or attempt == 2:
                    raise

    def _write_config(self) -> Path:
        config = self._config
        lines = [
            "# generated by testbed MosquittoBroker; do not edit",
            "per_listener_settings false",
            f"max_queued_messages {config.max_queued_messages}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise mosquitto drops to 'mosquitto' and cannot read
        if config.persistence:
            persistence_dir = self._dir / "persistence"
            persistence_dir.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {persistence_dir}/"]
        else:
            lines.append("persistence false")
        if config.users:
            password_file = self._dir / "passwords"
            password_file.write_text(
                "".join(
                    mosquitto_password_line(user, secret.get_secret_value()) + "\n"
                    for user, secret in config.users.items()
                )
            )
            password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        lines.append(f"listener {self._port} {config.host}")
        if config.tls:
            pki = self.pki
            lines += [
                f"listener {self._tls_port} {config.host}",
                f"cafile {pki.ca_cert}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
                f"require_certificate {'true' if config.require_client_certificate else 'false'}",
            ]
        path = self._dir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def _start(self) -> None:
        conf = self._write_config()
        log = self.log_path.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self._executable), "-c", str(conf),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )
        finally:
            log.close()
        self.starts += 1
        ports = [self._port] + ([self._tls_port] if self._config.tls else [])
        try:
            async with asyncio.timeout(self._config.start_timeout_s):
                for port in ports:
                    await self._wait_listening(port)
        except TimeoutError as exc:
            await self._terminate()
            raise DriverTimeout(
                f"mosquitto not listening on {self._config.host}:{ports} within "
                f"{self._config.start_timeout_s} s; log: {self._log_tail()}"
            ) from exc
        _log.info("mosquitto_started", host=self._config.host, port=self._port,
                  tls_port=self._tls_port or None, pid=self._process.pid)

    async def _wait_listening(self, port: int) -> None:
        process = self._process
        assert process is not None
        while True:
            if process.returncode is not None:
                raise DriverError(
                    f"mosquitto exited with status {process.returncode}: {self._log_tail()}"
                )
            try:
                _, writer = await asyncio.open_connection(self._config.host, port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(self._config.stop_timeout_s):
                await process.wait()
        except TimeoutError:
            _log.warning("mosquitto_kill_after_timeout", pid=process.pid)
            process.kill()
            await process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:].strip()
        except OSError:
            return "(no log)"

    def _cleanup_dir(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
