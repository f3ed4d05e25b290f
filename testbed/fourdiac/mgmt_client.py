"""A management client: speaks to port 61499 as 4diac IDE does, and replays boot files.

`replay_boot_file` sends every line of a `.fboot` through the socket, in order,
and collects each reply; a line whose reply carries a `Reason` is a failure
(FORTE's RDY is a reply without one). Used by tests, the deploy benchmark and
anyone scripting a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from defusedxml import ElementTree as SafeET

from testbed.errors import ManagementError
from testbed.fourdiac.bootfile import read_boot_file
from testbed.fourdiac.mgmt_frames import FrameError, FrameReader, encode_request, read_frame

__all__ = ["BlockingManagementClient", "ClientState", "ManagementClient", "ReplayResult", "Reply",
           "parse_reply"]

DEFAULT_CONNECT_DEADLINE_S = 5.0
DEFAULT_REPLY_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed `<Response>`: `reason` None means RDY; `xml` is the whole text."""

    request_id: str
    reason: str | None
    xml: str

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One boot-file line sent and what came back."""

    line: int
    destination: str
    request: str
    reply: Reply


class ClientState(enum.Enum):
    CREATED = "created"
    CONNECTED = "connected"
    CLOSED = "closed"


def parse_reply(xml: str) -> Reply:
    try:
        root = SafeET.fromstring(xml)
    except Exception as exc:  # defusedxml raises several types for bad XML
        raise ManagementError("INVALID_OBJECT", f"unparsable response {xml[:80]!r}") from exc
    if root.tag != "Response":
        raise ManagementError("INVALID_OBJECT", f"expected <Response>, got <{root.tag}>")
    return Reply(root.get("ID", ""), root.get("Reason"), xml)


class ManagementClient:
    """One connection to a management server (one-shot async context manager)."""

    def __init__(self, host: str, port: int, *,
                 connect_deadline_s: float = DEFAULT_CONNECT_DEADLINE_S,
                 reply_deadline_s: float = DEFAULT_REPLY_DEADLINE_S) -> None:
        self.host, self.port = host, port
        self.connect_deadline_s = connect_deadline_s
        self.reply_deadline_s = reply_deadline_s
        self.state = ClientState.CREATED
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next_id = 0

    async def __aenter__(self) -> ManagementClient:
        if self.state is not ClientState.CREATED:
            raise RuntimeError("ManagementClient is single-use")
        async with asyncio.timeout(self.connect_deadline_s):
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.state = ClientState.CONNECTED
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.state is ClientState.CLOSED:
            return
        self.state = ClientState.CLOSED
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._writer.wait_closed()

    async def request_raw(self, destination: str, xml: str) -> str:
        """Send one request; return the reply's XML text."""
        if self._reader is None or self._writer is None or self.state is not \
                ClientState.CONNECTED:
            raise ManagementError("INVALID_STATE", "client is not connected")
        self._writer.write(encode_request(destination, xml))
        async with asyncio.timeout(self.reply_deadline_s):
            await self._writer.drain()
            text = await read_frame(self._reader, deadline_s=self.reply_deadline_s)
        if text is None:
            raise FrameError("server closed the connection before replying")
        return text

    async def request(self, destination: str, xml: str) -> Reply:
        return parse_reply(await self.request_raw(destination, xml))

    async def command(self, destination: str, action: str, body: str = "") -> Reply:
        """Send `<Request ID=n Action=action>body</Request>` with a fresh ID."""
        self._next_id += 1
        xml = (f'<Request ID="{self._next_id}" Action="{action}">{body}</Request>' if body
               else f'<Request ID="{self._next_id}" Action="{action}"/>')
        return await self.request(destination, xml)

    async def replay_boot_file(self, path: str | Path, *,
                               stop_on_failure: bool = True) -> list[ReplayResult]:
        """Send every line of a boot file as 4diac IDE would; stop at the first failure."""
        results: list[ReplayResult] = []
        for cmd in read_boot_file(path):
            reply = await self.request(cmd.destination, cmd.request)
            results.append(ReplayResult(cmd.line, cmd.destination, cmd.request, reply))
            if stop_on_failure and not reply.ok:
                break
        return results


class BlockingManagementClient:
    """The same protocol over a plain blocking socket, as 4diac IDE talks to a device.

    For scripts and benchmarks outside an event loop; every call has a deadline
    (the socket timeout). Use as a context manager; `close()` is idempotent.
    """

    def __init__(self, host: str, port: int, *, deadline_s: float = DEFAULT_REPLY_DEADLINE_S,
                 ) -> None:
        self.host, self.port = host, port
        self.deadline_s = deadline_s
        self._sock: socket.socket | None = None
        self._frames = FrameReader()
        self._pending: list[str] = []

    def __enter__(self) -> BlockingManagementClient:
        sock = socket.create_connection((self.host, self.port), timeout=self.deadline_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def request_raw(self, destination: str, xml: str) -> str:
        if self._sock is None:
            raise ManagementError("INVALID_STATE", "client is not connected")
        self._sock.sendall(encode_request(destination, xml))
        while not self._pending:
            chunk = self._sock.recv(65536)  # socket timeout = the reply deadline
            if not chunk:
                raise FrameError("server closed the connection before replying")
            self._pending.extend(self._frames.feed(chunk))
        return self._pending.pop(0)

    def request(self, destination: str, xml: str) -> Reply:
        return parse_reply(self.request_raw(destination, xml))
