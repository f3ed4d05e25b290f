"""drivers.ip: UDP unicast/multicast endpoints and TCP listen/connect on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from drivers.errors import ConnectionLost, DriverConfigError, DriverTimeout
from drivers.ip import (
    TcpConnection,
    TcpState,
    UdpState,
    connect_tcp,
    listen_tcp,
    open_udp_receiver,
    open_udp_sender,
)


async def test_udp_unicast_roundtrip_and_statistics() -> None:
    """A datagram sent to a receiver bound on port 0 arrives with its sender; counters add up."""
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(10)
    rx = open_udp_receiver("127.0.0.1", 0, lambda d, a: got.put_nowait((d, a)), loop=loop)
    tx = open_udp_sender("127.0.0.1", rx.local_address[1])
    try:
        tx.send(b"\x44\x00\x00\x00\x1a")
        data, sender = await asyncio.wait_for(got.get(), 2)
        assert data == b"\x44\x00\x00\x00\x1a"
        assert sender[1] == tx.local_address[1]
        assert tx.statistics().datagrams_sent == 1
        assert rx.statistics().datagrams_received == 1
    finally:
        tx.close()
        rx.close()
    assert rx.state is UdpState.CLOSED
    rx.close()  # idempotent
    with pytest.raises(ConnectionLost):
        tx.send(b"x")


async def test_udp_multicast_two_receivers_same_port() -> None:
    """Two receivers of one group and port (SO_REUSEADDR) both get a looped-back datagram."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(10), asyncio.Queue(10)]
    receivers = [open_udp_receiver("239.192.0.2", port, lambda d, a, q=q: q.put_nowait(d),
                                   loop=loop) for q in inboxes]
    tx = open_udp_sender("239.192.0.2", port)
    try:
        tx.send(b"group")
        for q in inboxes:
            assert await asyncio.wait_for(q.get(), 2) == b"group"
    finally:
        tx.close()
        for r in receivers:
            r.close()


async def test_udp_sender_to_nobody_keeps_sending_every_datagram() -> None:
    """A connected sender hears ICMP port unreachable; it counts it and still sends each one.

    The kernel reports the unreachable port of datagram k on send k+1 and drops k+1;
    the endpoint resends it, so a subscriber that appears later gets the next datagram,
    as from an unconnected socket.
    """
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tx = open_udp_sender("127.0.0.1", port)
    got: asyncio.Queue[bytes] = asyncio.Queue(10)
    try:
        for i in range(5):
            tx.send(bytes([i]))  # nobody listens: no exception
            await asyncio.sleep(0.01)  # let the ICMP reply arrive before the next send
        stats = tx.statistics()
        assert stats.datagrams_sent == 5
        assert stats.send_errors == 0
        assert stats.port_unreachable >= 1
        rx = open_udp_receiver("127.0.0.1", port, lambda d, a: got.put_nowait(d), loop=loop)
        try:
            tx.send(b"late")  # the unreachable report of datagram 4 is consumed here
            assert await asyncio.wait_for(got.get(), 2) == b"late"
        finally:
            rx.close()
    finally:
        tx.close()


def test_udp_bad_arguments_are_config_errors() -> None:
    """Port 0 as a destination or an unresolvable host is a DriverConfigError."""
    with pytest.raises(DriverConfigError):
        open_udp_sender("127.0.0.1", 0)
    with pytest.raises(DriverConfigError):
        open_udp_sender("no-such-host.invalid", 5)


async def test_tcp_echo_both_ways_and_peer_close() -> None:
    """A connect reaches the listener; data flows both ways; closing one side tells the other."""
    loop = asyncio.get_running_loop()
    server_side: list[TcpConnection] = []
    server_data: asyncio.Queue[bytes] = asyncio.Queue(10)
    client_data: asyncio.Queue[bytes] = asyncio.Queue(10)
    closed: asyncio.Queue[str] = asyncio.Queue(10)
    listener = listen_tcp("127.0.0.1", 0, loop=loop, on_accept=server_side.append,
                          on_data=lambda c, d: server_data.put_nowait(d),
                          on_closed=lambda c, r: closed.put_nowait("server:" + r))
    done: asyncio.Future[TcpConnection | Exception] = loop.create_future()
    connect_tcp("127.0.0.1", listener.local_address[1], loop=loop, on_done=done.set_result,
                on_data=lambda c, d: client_data.put_nowait(d),
                on_closed=lambda c, r: closed.put_nowait("client:" + r))
    conn = await asyncio.wait_for(done, 2)
    assert isinstance(conn, TcpConnection)
    try:
        conn.send(b"request")
        assert await asyncio.wait_for(server_data.get(), 2) == b"request"
        server_side[0].send(b"answer" * 10_000)
        received = b""
        while len(received) < 60_000:
            received += await asyncio.wait_for(client_data.get(), 2)
        assert received == b"answer" * 10_000
        server_side[0].close()
        assert await asyncio.wait_for(closed.get(), 2) == "client:peer closed the connection"
        assert conn.state is TcpState.CLOSED
        with pytest.raises(ConnectionLost):
            conn.send(b"late")
    finally:
        conn.close()
        listener.close()
    assert listener.accepted == 1


async def test_tcp_connect_refused_reports_connection_lost() -> None:
    """Connecting to a closed port reports ConnectionLost through on_done."""
    loop = asyncio.get_running_loop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done: asyncio.Future[object] = loop.create_future()
    connect_tcp("127.0.0.1", port, loop=loop, on_done=done.set_result,
                on_data=lambda c, d: None, on_closed=lambda c, r: None)
    result = await asyncio.wait_for(done, 2)
    assert isinstance(result, ConnectionLost)


async def test_tcp_connect_deadline() -> None:
    """A connect that cannot complete (full backlog) reports DriverTimeout at its deadline."""
    loop = asyncio.get_running_loop()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the accept queue so the next SYN is not answered
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", port))
                fillers.append(f)
            done: asyncio.Future[object] = loop.create_future()
            connect_tcp("127.0.0.1", port, loop=loop, on_done=done.set_result,
                        on_data=lambda c, d: None, on_closed=lambda c, r: None, timeout_s=0.3)
            result = await asyncio.wait_for(done, 3)
        finally:
            for f in fillers:
                f.close()
    if isinstance(result, TcpConnection):
        result.close()
        pytest.skip("this kernel accepted past the backlog; no way to stall a loopback connect")
    assert isinstance(result, DriverTimeout)


async def test_tcp_cancelled_connect_never_reports() -> None:
    """cancel() before completion means on_done is never called."""
    loop = asyncio.get_running_loop()
    listener = listen_tcp("127.0.0.1", 0, loop=loop, on_accept=lambda c: c.close(),
                          on_data=lambda c, d: None, on_closed=lambda c, r: None)
    calls: list[object] = []
    connector = connect_tcp("127.0.0.1", listener.local_address[1], loop=loop,
                            on_done=calls.append, on_data=lambda c, d: None,
                            on_closed=lambda c, r: None)
    connector.cancel()
    await asyncio.sleep(0.05)
    listener.close()
    assert calls == []


def test_addresses_are_numeric_or_localhost() -> None:
    """localhost maps to 127.0.0.1; other names are refused rather than resolved on the loop."""
    from drivers.ip.addresses import numeric_ipv4

    assert numeric_ipv4("localhost") == "127.0.0.1"
    assert numeric_ipv4(" 10.0.0.1 ") == "10.0.0.1"
    with pytest.raises(DriverConfigError, match="not resolved"):
        numeric_ipv4("plc.example.com")
