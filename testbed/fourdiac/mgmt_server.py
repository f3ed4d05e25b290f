"""The FORTE-compatible management server (port 61499): what 4diac IDE deploys to.

Each request is two framed strings (destination, XML; see `mgmt_frames`); each
reply is one framed `<Response ID=".."/>`. Requests run on the event loop that
also drives the device's resources, so a command never races an event: it runs
between two slices of the resource's queue.

Safe by default: binds 127.0.0.1, optional allow-list of peer networks, request
size limit, a deadline to finish a started request, an idle timeout, a cap on
concurrent connections. A broken frame closes that connection (logged); bad XML
gets an error response; nothing a peer sends can end the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import structlog

from testbed.errors import ManagementError
from testbed.fourdiac.commands import CommandExecutor, MgmtResponse
from testbed.fourdiac.mgmt_frames import (
    MAX_FRAME_BYTES,
    FrameError,
    encode_frame,
    read_request,
)
from testbed.runtime.device import Device

__all__ = ["DEFAULT_PORT", "ManagementServer", "ManagementServerStatistics",
           "ServerSettings", "ServerState", "parse_address", "settings_from_address"]

log = structlog.get_logger(__name__)

DEFAULT_PORT = 61499
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the server listens and what it tolerates."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow: tuple[str, ...] = ()
    """Peer addresses or networks allowed to connect; empty = anyone who can reach it."""
    max_request_bytes: int = MAX_FRAME_BYTES
    request_deadline_s: float = 10.0
    idle_timeout_s: float | None = 600.0
    write_deadline_s: float = 10.0
    max_connections: int = 16


@dataclass(frozen=True, slots=True)
class ManagementServerStatistics:
    connections_accepted: int
    connections_refused: int
    connections_open: int
    requests: int
    requests_failed: int
    frame_errors: int


class ServerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    CLOSED = "closed"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, `host` or `:port` -> (host, port), as FORTE's `-c`."""
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    host = host or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ManagementError("BAD_PARAMS", f"bad port in management address {text!r}") from None
    if not 0 <= port <= 65535:
        raise ManagementError("BAD_PARAMS", f"port out of range in management address {text!r}")
    return host, port


class ManagementServer:
    """One-shot async context manager serving management requests for one device."""

    def __init__(self, device: Device, settings: ServerSettings | None = None,
                 executor: CommandExecutor | None = None) -> None:
        self.device = device
        self.settings = settings or ServerSettings()
        self.executor = executor if executor is not None else CommandExecutor(device)
        self.state = ServerState.CREATED
        self._allow: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(a, strict=False) for a in self.settings.allow)
        self._server: asyncio.Server | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._conns: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._accepted = self._refused = self._requests = self._failed = 0
        self._frame_errors = 0
        self.port = 0
        self.host = self.settings.host

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> ManagementServer:
        if self.state is not ServerState.CREATED:
            raise RuntimeError("ManagementServer is single-use")
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._server = await asyncio.start_server(
                self._on_connect, self.settings.host, self.settings.port,
                limit=self.settings.max_request_bytes + 16)
        except OSError as exc:
            self._tg = None
            await tg.__aexit__(None, None, None)
            self.state = ServerState.CLOSED
            raise ManagementError(
                "INVALID_STATE", f"cannot listen on {self.settings.host}:{self.settings.port}: "
                f"{exc.strerror or exc}") from exc
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = str(sock[0]), int(sock[1])
        self.state = ServerState.RUNNING
        log.info("management_server_started", host=self.host, port=self.port,
                 allow=list(self.settings.allow))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, close every connection, wait for their tasks; idempotent."""
        if self.state is ServerState.CLOSED:
            return
        self.state = ServerState.CLOSED
        if self._server is not None:
            self._server.close()
        for task, writer in list(self._conns.items()):
            writer.close()
            task.cancel()
        tg, self._tg = self._tg, None
        if tg is not None:
            await tg.__aexit__(None, None, None)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
        log.info("management_server_stopped", host=self.host, port=self.port)

    def statistics(self) -> ManagementServerStatistics:
        return ManagementServerStatistics(self._accepted, self._refused, len(self._conns),
                                          self._requests, self._failed, self._frame_errors)

    # --- connections ---------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """asyncio's accept callback (plain function, so the task is ours, in our group)."""
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if self._tg is None or self.state is not ServerState.RUNNING:
            writer.close()
            return
        reason = self._refusal(peer_host)
        if reason is not None:
            self._refused += 1
            log.warning("management_connection_refused", peer=peer_host, reason=reason)
            writer.close()
            return
        self._accepted += 1
        task = self._tg.create_task(self._serve(reader, writer, peer_host),
                                    name=f"mgmt:{peer_host}")
        self._conns[task] = writer
        task.add_done_callback(lambda t: self._conns.pop(t, None))

    def _refusal(self, peer_host: str) -> str | None:
        if len(self._conns) >= self.settings.max_connections:
            return f"too many connections ({self.settings.max_connections})"
        if not self._allow:
            return None
        try:
            addr = ipaddress.ip_address(peer_host.partition("%")[0])
        except ValueError:
            return "unparsable peer address"
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self._allow):
            return None
        return "not in the allow-list"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> None:
        log.debug("management_connection_opened", peer=peer)
        why = "peer closed"
        try:
            why = await self._request_loop(reader, writer, peer)
        except FrameError as exc:
            self._frame_errors += 1
            why = f"bad frame: {exc}"
            log.warning("management_frame_rejected", peer=peer, error=str(exc))
        except (OSError, ConnectionError) as exc:
            why = f"socket error: {exc}"
        except TimeoutError:
            why = "idle timeout or write deadline"
        except Exception as exc:  # last line of defence: one connection never ends the server
            why = f"internal error: {type(exc).__name__}: {exc}"
            log.error("management_connection_failed", peer=peer, error=why)
        finally:
            writer.close()
            with contextlib.suppress(Exception):  # the peer may be gone already
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            log.debug("management_connection_closed", peer=peer, reason=why)

    async def _request_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            peer: str) -> str:
        s = self.settings
        while True:
            async with asyncio.timeout(s.idle_timeout_s):
                request = await read_request(reader, s.max_request_bytes, s.request_deadline_s)
            if request is None:
                return "peer closed"
            response = self._execute(request.destination, request.xml, peer)
            try:
                payload = encode_frame(response.to_xml())
            except FrameError:
                payload = encode_frame(MgmtResponse(response.request_id, "OVERFLOW").to_xml())
            writer.write(payload)
            async with asyncio.timeout(s.write_deadline_s):
                await writer.drain()

    def _execute(self, destination: str, xml: str, peer: str) -> MgmtResponse:
        self._requests += 1
        response = self.executor.execute(destination, xml)
        if not response.ok:
            self._failed += 1
            # warning, not error: a refused request is the peer's problem, not the device's
            log.warning("management_request_refused", peer=peer, destination=destination,
                        request_id=response.request_id, reason=response.reason,
                        detail=response.detail)
        return response


def settings_from_address(address: str, allow: Sequence[str] = ()) -> ServerSettings:
    """Settings for FORTE's `-c host:port`."""
    host, port = parse_address(address)
    return ServerSettings(host=host, port=port, allow=tuple(allow))
