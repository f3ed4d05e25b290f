"""TCP listeners, connections and connects driven by the asyncio loop's reader/writer callbacks.

The same callback style as `drivers.ip.udp`: sockets are non-blocking, the loop
calls us when they are readable or writable, and no task is needed. A connect
reports once through `on_done` (a connection, or the error) and always within its
deadline (`timeout_s`, default 5 s). A connection hands every chunk it reads to
`on_data` and tells `on_closed` once when the peer goes away or it is closed.
Writes that the kernel cannot take at once wait in a bounded buffer
(`max_buffered_bytes`); past it the connection is closed (counted), never grown.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.ip.addresses import numeric_ipv4

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "TcpConnection",
    "TcpConnector",
    "TcpListener",
    "TcpState",
    "TcpStatistics",
    "connect_tcp",
    "listen_tcp",
]

log = structlog.get_logger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5.0
_READ_CHUNK = 65_536
_DEFAULT_MAX_BUFFERED = 1 << 20


class TcpState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TcpStatistics:
    """Counters of one connection."""

    bytes_sent: int
    bytes_received: int
    buffered_bytes: int
    overflow_closes: int


DataHandler = Callable[["TcpConnection", bytes], None]
ClosedHandler = Callable[["TcpConnection", str], None]


class TcpConnection:
    """A connected socket read by the loop; `send` never blocks."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        on_data: DataHandler,
        on_closed: ClosedHandler,
        *,
        max_buffered_bytes: int = _DEFAULT_MAX_BUFFERED,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = loop
        self._on_data = on_data
        self._on_closed = on_closed
        self._max_buffered = max_buffered_bytes
        self._out = bytearray()
        self._writing = False
        self._state = TcpState.OPEN
        self._sent = 0
        self._received = 0
        self._overflows = 0
        peer = sock.getpeername()
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1]))
        loop.add_reader(self._fd, self._readable)

    @property
    def state(self) -> TcpState:
        return self._state

    def send(self, payload: bytes) -> None:
        """Queue `payload`; ConnectionLost if closed or if the write buffer would overflow."""
        if self._state is not TcpState.OPEN:
            raise ConnectionLost(f"TCP connection to {self.peer} is closed")
        if self._out:
            self._buffer(payload)
            return
        try:
            n = self._sock.send(payload)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._close(f"send failed: {exc}")
            raise ConnectionLost(f"TCP send to {self.peer} failed: {exc}") from exc
        self._sent += n
        if n < len(payload):
            self._buffer(payload[n:])

    def _buffer(self, rest: bytes) -> None:
        if len(self._out) + len(rest) > self._max_buffered:
            self._overflows += 1
            self._close("write buffer overflow")
            raise ConnectionLost(
                f"TCP peer {self.peer} does not read: {len(self._out)} bytes buffered")
        self._out += rest
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            n = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(f"send failed: {exc}")
            return
        self._sent += n
        del self._out[:n]
        if not self._out:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(f"receive failed: {exc}")
            return
        if not data:
            self._close("peer closed the connection")
            return
        self._received += len(data)
        self._on_data(self, data)

    def _close(self, reason: str) -> None:
        if self._state is TcpState.CLOSED:
            return
        self.close()
        self._on_closed(self, reason)

    def close(self) -> None:
        """Close without telling `on_closed` (the owner asked); idempotent."""
        if self._state is TcpState.CLOSED:
            return
        self._state = TcpState.CLOSED
        if not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._fd)
            if self._writing:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_writer(self._fd)
        self._writing = False
        self._out.clear()
        self._sock.close()

    def statistics(self) -> TcpStatistics:
        return TcpStatistics(self._sent, self._received, len(self._out), self._overflows)


ConnectDone = Callable[["TcpConnection | DriverError"], None]


class TcpConnector:
    """A connect in progress; `cancel()` stops it without calling `on_done`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: tuple[str, int],
        on_done: ConnectDone,
        on_data: DataHandler,
        on_closed: ClosedHandler,
        timeout_s: float,
    ) -> None:
        self._loop = loop
        self._address = address
        self._on_done: ConnectDone | None = on_done
        self._on_data = on_data
        self._on_closed = on_closed
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        self._timer = loop.call_later(timeout_s, self._timed_out, timeout_s)
        err = self._sock.connect_ex(address)
        if err in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            loop.add_writer(self._sock.fileno(), self._writable)
        else:
            loop.call_soon(self._finish_error, err)

    def _writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._loop.remove_writer(sock.fileno())
        if err:
            self._finish_error(err)
            return
        self._sock = None
        self._timer.cancel()
        try:
            conn = TcpConnection(sock, self._loop, self._on_data, self._on_closed)
        except OSError as exc:  # peer reset between connect and getpeername
            sock.close()
            self._report(ConnectionLost(f"connect to {self._address} failed: {exc}"))
            return
        self._report(conn)

    def _finish_error(self, err: int) -> None:
        if self._sock is None:
            return
        self._drop_socket()
        self._report(ConnectionLost(
            f"connect to {self._address[0]}:{self._address[1]} failed: "
            f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"))

    def _timed_out(self, timeout_s: float) -> None:
        if self._sock is None:
            return
        self._drop_socket()
        self._report(DriverTimeout(
            f"connect to {self._address[0]}:{self._address[1]} took longer than {timeout_s} s"))

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        self._timer.cancel()
        if sock is not None:
            if not self._loop.is_closed():
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_writer(sock.fileno())
            sock.close()

    def _report(self, result: TcpConnection | DriverError) -> None:
        done, self._on_done = self._on_done, None
        if done is not None:
            done(result)

    def cancel(self) -> None:
        """Abandon the connect; `on_done` is not called. Idempotent."""
        self._on_done = None
        self._drop_socket()


def connect_tcp(
    host: str,
    port: int,
    *,
    loop: asyncio.AbstractEventLoop,
    on_done: ConnectDone,
    on_data: DataHandler,
    on_closed: ClosedHandler,
    timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> TcpConnector:
    """Start connecting to `host:port` (numeric IPv4 or localhost); `on_done` gets the result."""
    if not 0 < port <= 0xFFFF:
        raise DriverConfigError(f"TCP port must be 1..65535, got {port}")
    address = (numeric_ipv4(host), port)
    return TcpConnector(loop, address, on_done, on_data, on_closed, timeout_s)


AcceptHandler = Callable[["TcpConnection"], None]


class TcpListener:
    """A listening socket; every accepted connection is handed to `on_accept`."""

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        on_accept: AcceptHandler,
        on_data: DataHandler,
        on_closed: ClosedHandler,
    ) -> None:
        self._sock = sock
        self._loop = loop
        self._on_accept = on_accept
        self._on_data = on_data
        self._on_closed = on_closed
        self._state = TcpState.OPEN
        self._accepted = 0
        loop.add_reader(sock.fileno(), self._readable)

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def accepted(self) -> int:
        return self._accepted

    def _readable(self) -> None:
        try:
            conn_sock, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("tcp_accept_failed", local=self.local_address, error=str(exc))
            return
        try:
            conn = TcpConnection(conn_sock, self._loop, self._on_data, self._on_closed)
        except OSError:
            conn_sock.close()
            return
        self._accepted += 1
        self._on_accept(conn)

    def close(self) -> None:
        """Stop accepting; connections already accepted belong to their owner. Idempotent."""
        if self._state is TcpState.CLOSED:
            return
        self._state = TcpState.CLOSED
        if not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


def listen_tcp(
    host: str,
    port: int,
    *,
    loop: asyncio.AbstractEventLoop,
    on_accept: AcceptHandler,
    on_data: DataHandler,
    on_closed: ClosedHandler,
    backlog: int = 64,
) -> TcpListener:
    """Listen on `host:port` (port 0: ephemeral, read back from `local_address`)."""
    if not 0 <= port <= 0xFFFF:
        raise DriverConfigError(f"TCP port must be 0..65535, got {port}")
    address = numeric_ipv4(host)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        sock.bind((address, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ConnectionLost(f"cannot listen on {host}:{port}: {exc}") from exc
    return TcpListener(sock, loop, on_accept, on_data, on_closed)
