"""`ip[host:port]` under an encoding layer: UDP for PUBLISH/SUBSCRIBE, TCP for CLIENT/SERVER.

As FORTE's `CIPComLayer`: a publisher sends each message as one datagram to the
address (a multicast group or a unicast peer); a subscriber binds the port (joining
the group) and decodes each datagram; a client connects to the server and sends
requests on it; a server listens on the port and answers the connection its last
request came from. TCP carries the encoded messages back to back, with no framing.

A client whose server goes away reports `lost` (INITO QO=FALSE "TERMINATED"); a
server just forgets the connection and keeps listening, as FORTE's does.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from drivers.errors import DriverError
from drivers.ip import (
    TcpConnection,
    TcpConnector,
    TcpListener,
    UdpEndpoint,
    connect_tcp,
    listen_tcp,
    open_udp_receiver,
    open_udp_sender,
)
from fb.net.codec import PayloadCodec, PayloadError
from fb.net.layers.base import (
    ComStatus,
    DataPoints,
    LayerContext,
    LayerOutcome,
    Role,
    outcome,
)
from testbed.fourdiac.comm_id import IpEndpoint

__all__ = ["TcpClientLayer", "TcpServerLayer", "UdpPublishLayer", "UdpSubscribeLayer"]

log = structlog.get_logger(__name__)

_OK = outcome(ComStatus.OK)
MAX_PENDING_BYTES = 1 << 20
"""A TCP peer whose unfinished message grows past this is cut off (RECV_FAILED)."""
MAX_SERVER_CLIENTS = 16
"""Clients one SERVER holds at once; later ones are closed at accept (counted, logged)."""


class _Transport(Protocol):
    def send(self, payload: bytes) -> object: ...


def _encode_and_send(codec: PayloadCodec, points: DataPoints,
                     transport: _Transport) -> LayerOutcome:
    """Encode SD values and hand them to a transport, mapping failures to STATUS."""
    try:
        transport.send(codec.encode(points))
    except PayloadError as exc:
        return exc.result
    except DriverError as exc:
        return outcome(ComStatus.SEND_FAILED, str(exc))
    return _OK


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_NO_LOOP = outcome(ComStatus.NO_SOCKET, "no running event loop (use the async API)")


class UdpPublishLayer:
    """PUBLISH over UDP: one datagram per REQ."""

    def __init__(self, endpoint: IpEndpoint, codec: PayloadCodec, ctx: LayerContext) -> None:
        self._endpoint = endpoint
        self._codec = codec
        self._ctx = ctx
        self._udp: UdpEndpoint | None = None

    def open(self) -> LayerOutcome | None:
        ep = self._endpoint
        try:
            self._udp = open_udp_sender(ep.host, ep.port, interface=ep.interface)
        except DriverError as exc:
            return outcome(ComStatus.NO_SOCKET, str(exc))
        return _OK

    def send(self, points: DataPoints) -> LayerOutcome:
        udp = self._udp
        if udp is None:
            return outcome(ComStatus.NO_SOCKET, "closed")
        return _encode_and_send(self._codec, points, udp)

    def close(self) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()

    @property
    def udp(self) -> UdpEndpoint | None:
        return self._udp


class UdpSubscribeLayer:
    """SUBSCRIBE over UDP: each datagram is decoded on the loop and delivered."""

    def __init__(self, endpoint: IpEndpoint, codec: PayloadCodec, ctx: LayerContext) -> None:
        self._endpoint = endpoint
        self._codec = codec
        self._ctx = ctx
        self._udp: UdpEndpoint | None = None
        self.malformed = 0

    def open(self) -> LayerOutcome | None:
        loop = _running_loop()
        if loop is None:
            return _NO_LOOP
        ep = self._endpoint
        try:
            self._udp = open_udp_receiver(ep.host, ep.port, self._datagram, loop=loop,
                                          interface=ep.interface)
        except DriverError as exc:
            return outcome(ComStatus.NO_SOCKET, str(exc))
        return _OK

    def _datagram(self, data: bytes, sender: tuple[str, int]) -> None:
        try:
            values = self._codec.decode(data)
        except PayloadError as exc:
            self.malformed += 1
            self._ctx.fail(outcome(exc.result.status,
                                   f"from {sender[0]}:{sender[1]}: {exc.result.detail}"))
            return
        except Exception as exc:  # a codec bug must not escape into the loop's callback
            self.malformed += 1
            self._ctx.fail(outcome(ComStatus.RECV_FAILED, f"{type(exc).__name__}: {exc}"))
            return
        self._ctx.deliver(values)

    def send(self, points: DataPoints) -> LayerOutcome:
        return outcome(ComStatus.INVALID_OBJECT, "a subscriber does not send")

    def close(self) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp.close()

    @property
    def local_address(self) -> tuple[str, int] | None:
        """Where the subscriber listens (port 0 in the ID: read the real port here)."""
        return self._udp.local_address if self._udp is not None else None


def _take_messages(codec: PayloadCodec, buffer: bytearray, data: bytes,
                   ) -> list[tuple[object, ...]] | LayerOutcome:
    """Append `data` and take the complete messages; a fault clears the buffer."""
    buffer += data
    try:
        messages = codec.decode_stream(buffer)
    except PayloadError as exc:
        buffer.clear()
        return exc.result
    except Exception as exc:  # a codec bug must not escape into the loop's callback
        buffer.clear()
        return outcome(ComStatus.RECV_FAILED, f"{type(exc).__name__}: {exc}")
    if len(buffer) > MAX_PENDING_BYTES:
        buffer.clear()
        return outcome(ComStatus.RECV_FAILED,
                       f"unfinished message longer than {MAX_PENDING_BYTES} bytes")
    return messages


class TcpClientLayer:
    """CLIENT over TCP: INIT+ connects (INITO when connected), REQ sends, answers fire CNF."""

    def __init__(self, endpoint: IpEndpoint, codec: PayloadCodec, ctx: LayerContext,
                 connect_timeout_s: float = 5.0) -> None:
        self._endpoint = endpoint
        self._codec = codec
        self._ctx = ctx
        self._timeout_s = connect_timeout_s
        self._connector: TcpConnector | None = None
        self._conn: TcpConnection | None = None
        self._buffer = bytearray()
        self._closed = False
        self.malformed = 0

    def open(self) -> LayerOutcome | None:
        loop = _running_loop()
        if loop is None:
            return _NO_LOOP
        ep = self._endpoint
        try:
            self._connector = connect_tcp(ep.host, ep.port, loop=loop, on_done=self._connected,
                                          on_data=self._data, on_closed=self._peer_closed,
                                          timeout_s=self._timeout_s)
        except DriverError as exc:
            return outcome(ComStatus.INVALID_ID, str(exc))
        return None

    def _connected(self, result: TcpConnection | DriverError) -> None:
        self._connector = None
        if isinstance(result, DriverError):
            self._ctx.opened(outcome(ComStatus.NO_SOCKET, str(result)))
            return
        if self._closed:
            result.close()
            return
        self._conn = result
        self._ctx.opened(_OK)

    def _data(self, conn: TcpConnection, data: bytes) -> None:
        messages = _take_messages(self._codec, self._buffer, data)
        if isinstance(messages, LayerOutcome):
            self.malformed += 1
            self._ctx.fail(messages)
            return
        for values in messages:
            self._ctx.deliver(values)

    def _peer_closed(self, conn: TcpConnection, reason: str) -> None:
        self._conn = None
        self._ctx.lost(outcome(ComStatus.TERMINATED, f"server {self._endpoint}: {reason}"))

    def send(self, points: DataPoints) -> LayerOutcome:
        conn = self._conn
        if conn is None:
            return outcome(ComStatus.NO_SOCKET, "not connected")
        return _encode_and_send(self._codec, points, conn)

    def close(self) -> None:
        self._closed = True
        connector, self._connector = self._connector, None
        if connector is not None:
            connector.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class TcpServerLayer:
    """SERVER over TCP: listens; each request fires IND; RSP answers the last requester."""

    def __init__(self, endpoint: IpEndpoint, codec: PayloadCodec, ctx: LayerContext) -> None:
        self._endpoint = endpoint
        self._codec = codec
        self._ctx = ctx
        self._listener: TcpListener | None = None
        self._buffers: dict[TcpConnection, bytearray] = {}
        self._reply_to: TcpConnection | None = None
        self.malformed = 0
        self.refused_clients = 0

    def open(self) -> LayerOutcome | None:
        loop = _running_loop()
        if loop is None:
            return _NO_LOOP
        ep = self._endpoint
        try:
            self._listener = listen_tcp(ep.host, ep.port, loop=loop, on_accept=self._accepted,
                                        on_data=self._data, on_closed=self._client_closed)
        except DriverError as exc:
            return outcome(ComStatus.NO_SOCKET, str(exc))
        return _OK

    def _accepted(self, conn: TcpConnection) -> None:
        if len(self._buffers) >= MAX_SERVER_CLIENTS:
            self.refused_clients += 1
            log.warning("comm_client_refused", fb=self._ctx.fb_name,
                        peer=f"{conn.peer[0]}:{conn.peer[1]}", clients=len(self._buffers),
                        refused=self.refused_clients)
            conn.close()
            return
        self._buffers[conn] = bytearray()

    def _data(self, conn: TcpConnection, data: bytes) -> None:
        buffer = self._buffers.get(conn)
        if buffer is None:  # closed at accept
            return
        messages = _take_messages(self._codec, buffer, data)
        if isinstance(messages, LayerOutcome):
            self.malformed += 1
            self._ctx.fail(messages)
            return
        for values in messages:
            self._reply_to = conn
            self._ctx.deliver(values)

    def _client_closed(self, conn: TcpConnection, reason: str) -> None:
        self._buffers.pop(conn, None)
        if self._reply_to is conn:
            self._reply_to = None
        log.info("comm_client_left", fb=self._ctx.fb_name, peer=f"{conn.peer[0]}:{conn.peer[1]}",
                 reason=reason)

    def send(self, points: DataPoints) -> LayerOutcome:
        conn = self._reply_to
        if conn is None:
            return outcome(ComStatus.NO_SOCKET, "no client to answer")
        return _encode_and_send(self._codec, points, conn)

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for conn in list(self._buffers):
            conn.close()
        self._buffers.clear()
        self._reply_to = None

    @property
    def local_address(self) -> tuple[str, int] | None:
        return self._listener.local_address if self._listener is not None else None


def create_ip_layer(
    endpoint: IpEndpoint, codec: PayloadCodec, ctx: LayerContext,
) -> UdpPublishLayer | UdpSubscribeLayer | TcpClientLayer | TcpServerLayer:
    """The ip transport for the FB's role."""
    role = ctx.role
    if role is Role.PUBLISHER:
        return UdpPublishLayer(endpoint, codec, ctx)
    if role is Role.SUBSCRIBER:
        return UdpSubscribeLayer(endpoint, codec, ctx)
    if role is Role.CLIENT:
        return TcpClientLayer(endpoint, codec, ctx)
    return TcpServerLayer(endpoint, codec, ctx)
