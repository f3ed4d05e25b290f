"""UDP endpoints (unicast and multicast) driven by the asyncio loop's reader callbacks.

Sockets are made synchronously (creating, binding and joining a group do no network
waiting), so a comm FB can open one inside its INIT handler, as FORTE does. A sender's
socket is connected to its one destination where the kernel has a route (a connected
`send` skips the per-datagram route lookup of `sendto`, about 0.5 us on loopback) and
sends non-blocking; receiving registers the socket with `loop.add_reader`, so
no task is needed: each readable socket is drained in the loop's callback and every
datagram is handed to `on_datagram` there (off the resource task).

Multicast: a sender sets `IP_MULTICAST_LOOP` (so subscribers on the same host hear
it, the loopback setup these machines use) and `IP_MULTICAST_TTL`; a receiver binds
the group's port with `SO_REUSEADDR` (several subscribers of one group on one host)
and joins the group on the given interface, or on the default one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from drivers.errors import ConnectionLost, DriverConfigError
from drivers.ip.addresses import numeric_ipv4

__all__ = [
    "DatagramHandler",
    "UdpEndpoint",
    "UdpState",
    "UdpStatistics",
    "open_udp_receiver",
    "open_udp_sender",
]

log = structlog.get_logger(__name__)

DatagramHandler = Callable[[bytes, tuple[str, int]], None]
"""Called on the loop thread with each datagram and its sender address."""

_MAX_DATAGRAM = 65_535


class UdpState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


_OPEN = UdpState.OPEN  # per datagram: an enum member looked up on its class costs ~150 ns


@dataclass(frozen=True, slots=True)
class UdpStatistics:
    """Counters of one UDP endpoint."""

    datagrams_sent: int
    datagrams_received: int
    send_errors: int
    receive_errors: int
    port_unreachable: int = 0
    """ICMP port-unreachable reports a connected sender got (nobody listened; not errors)."""


def _is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False


class UdpEndpoint:
    """One UDP socket: a sender with a fixed destination, or a receiver with a callback."""

    def __init__(self, sock: socket.socket, destination: tuple[str, int] | None,
                 *, connected: bool = False) -> None:
        self._sock = sock
        self._destination = destination
        self._transmit: Callable[[bytes], object] = (
            sock.send if connected or destination is None
            else lambda payload: sock.sendto(payload, destination))
        self._unreachable = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_datagram: DatagramHandler | None = None
        self._state = UdpState.OPEN
        self._sent = 0
        self._received = 0
        self._send_errors = 0
        self._receive_errors = 0

    @property
    def state(self) -> UdpState:
        return self._state

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound address (read the port back after binding port 0)."""
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def destination(self) -> tuple[str, int] | None:
        return self._destination

    def send(self, payload: bytes) -> None:
        """Send one datagram to the destination now; ConnectionLost if the kernel refuses it."""
        if self._state is not _OPEN or self._destination is None:
            raise ConnectionLost("UDP endpoint is closed or has no destination")
        try:
            self._transmit(payload)
        except ConnectionRefusedError:
            # a connected socket reports an earlier datagram's ICMP port unreachable on
            # this send, which it then did not make; UDP does not care whether anyone
            # listens (an unconnected socket is never told), so count it and send again
            self._unreachable += 1
            self._retransmit(payload)
        except OSError as exc:
            self._send_failed(exc)
        self._sent += 1

    def _retransmit(self, payload: bytes) -> None:
        try:
            self._transmit(payload)
        except OSError as exc:
            self._send_failed(exc)

    def _send_failed(self, exc: OSError) -> None:
        self._send_errors += 1
        raise ConnectionLost(f"UDP send to {self._destination} failed: {exc}") from exc

    def _start_reading(self, loop: asyncio.AbstractEventLoop, handler: DatagramHandler) -> None:
        self._loop = loop
        self._on_datagram = handler
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        # one datagram per callback, as asyncio's own transports do: the loop's
        # level-triggered poll calls again while more are queued, and no EAGAIN is paid
        handler = self._on_datagram
        if self._state is not _OPEN or handler is None:
            return
        try:
            data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. ICMP port unreachable reported on a later recv
            self._receive_errors += 1
            log.warning("udp_receive_failed", local=self.local_address, error=str(exc))
            return
        self._received += 1
        handler(data, addr)  # AF_INET: already (host, port)

    def close(self) -> None:
        """Stop reading and close the socket; idempotent."""
        if self._state is UdpState.CLOSED:
            return
        self._state = UdpState.CLOSED
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock.fileno())
        self._loop = None
        self._on_datagram = None
        self._sock.close()

    def statistics(self) -> UdpStatistics:
        return UdpStatistics(self._sent, self._received, self._send_errors, self._receive_errors,
                             self._unreachable)


def open_udp_sender(
    host: str,
    port: int,
    *,
    interface: str | None = None,
    multicast_ttl: int = 1,
    multicast_loop: bool = True,
) -> UdpEndpoint:
    """A socket that sends datagrams to `host:port` (a multicast group or a unicast peer)."""
    if not 0 < port <= 0xFFFF:
        raise DriverConfigError(f"UDP destination port must be 1..65535, got {port}")
    address = numeric_ipv4(host)
    local_if = numeric_ipv4(interface) if interface is not None else None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if _is_multicast(address):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, multicast_ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(multicast_loop))
            if local_if is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                socket.inet_aton(local_if))
    except OSError as exc:
        sock.close()
        raise ConnectionLost(f"cannot set up UDP sender to {host}:{port}: {exc}") from exc
    try:
        sock.connect((address, port))  # sends nothing: fixes the route and the peer
        connected = True
    except OSError as exc:  # no route yet (a gateway booting before its network): sendto
        log.info("udp_sender_unconnected", destination=f"{address}:{port}", reason=str(exc))
        connected = False
    return UdpEndpoint(sock, (address, port), connected=connected)


def open_udp_receiver(
    host: str,
    port: int,
    on_datagram: DatagramHandler,
    *,
    loop: asyncio.AbstractEventLoop,
    interface: str | None = None,
) -> UdpEndpoint:
    """A socket bound to `host:port` (joining the group if `host` is multicast), read by `loop`.

    Port 0 binds an ephemeral port (read it back from `local_address`). A unicast
    `host` is the local address to bind (`0.0.0.0` for all).
    """
    if not 0 <= port <= 0xFFFF:
        raise DriverConfigError(f"UDP port must be 0..65535, got {port}")
    address = numeric_ipv4(host)
    multicast = _is_multicast(address)
    any_if = "0.0.0.0"  # noqa: S104 - INADDR_ANY: join where the kernel's route for the group says
    join_if = numeric_ipv4(interface) if interface is not None else any_if
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if multicast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))  # Linux: only this group's datagrams
            except OSError:
                sock.bind(("", port))
            membership = struct.pack("4s4s", socket.inet_aton(address),
                                      socket.inet_aton(join_if))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind((address, port))
    except OSError as exc:
        sock.close()
        raise ConnectionLost(f"cannot bind UDP receiver {host}:{port}: {exc}") from exc
    endpoint = UdpEndpoint(sock, None)
    endpoint._start_reading(loop, on_datagram)
    return endpoint
