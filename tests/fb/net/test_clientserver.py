"""CLIENT_n_m/SERVER_n_m over fbdk[].ip[] (TCP) on loopback: request/response, faults."""

from __future__ import annotations

import asyncio
import socket

from net_testkit import Recorder, comm_fb, new_resource, running_device

from fb.net.layers.ip import TcpServerLayer
from testbed.runtime.resource import Resource


async def _server(res: Resource, rec: Recorder, comm_id: str = "127.0.0.1:0") -> int:
    """SRV (SERVER_1_2: answers RD_1 + RD_2 as SD_1) wired to an adder; returns its port."""
    comm_fb(res, "SRV", "SERVER_1_2", comm_id)
    res.create_fb("A", "DINT2DINT")
    res.create_fb("B", "DINT2DINT")
    res.create_fb("ADD", "F_ADD")
    res.connect("SRV.RD_1", "A.IN")
    res.connect("SRV.RD_2", "B.IN")
    res.connect("A.OUT", "ADD.IN1")
    res.connect("B.OUT", "ADD.IN2")
    res.create_fb("SUM", "DINT2DINT")
    res.connect("ADD.OUT", "SUM.IN")
    res.connect("SUM.OUT", "SRV.SD_1")
    res.connect("SRV.IND", "A.REQ")
    res.connect("A.CNF", "B.REQ")
    res.connect("B.CNF", "ADD.REQ")
    res.connect("ADD.CNF", "SUM.REQ")
    res.connect("SUM.CNF", "SRV.RSP")
    res.start()
    res.inject("SRV.INIT")
    (inito,) = await rec.wait("SRV", "INITO")
    assert inito.values == {"QO": True, "STATUS": "OK"}
    layer = res.fb("SRV").layer  # type: ignore[attr-defined]
    assert isinstance(layer, TcpServerLayer)
    address = layer.local_address
    assert address is not None
    return address[1]


def _client(res: Resource, port: int) -> None:
    """CLI (CLIENT_2_1) with SDs from X and Y and RD_1 typed by R."""
    comm_fb(res, "CLI", "CLIENT_2_1", f"fbdk[].ip[127.0.0.1:{port}]")
    res.create_fb("X", "DINT2DINT")
    res.create_fb("Y", "DINT2DINT")
    res.create_fb("R", "DINT2DINT")
    res.connect("X.OUT", "CLI.SD_1")
    res.connect("Y.OUT", "CLI.SD_2")
    res.connect("CLI.RD_1", "R.IN")
    res.connect("X.CNF", "Y.REQ")
    res.connect("Y.CNF", "CLI.REQ")
    res.start()


async def test_request_response_across_two_devices() -> None:
    """CLIENT_2_1 sends two DINTs, SERVER_1_2 adds them, CNF carries the sum; repeatedly."""
    async with running_device("server") as sdev, running_device("client") as cdev:
        sres, srec = new_resource(sdev, "S")
        port = await _server(sres, srec)
        cres, crec = new_resource(cdev, "C")
        _client(cres, port)
        cres.inject("CLI.INIT")
        (inito,) = await crec.wait("CLI", "INITO")
        assert inito.values == {"QO": True, "STATUS": "OK"}
        for k, (x, y) in enumerate([(20, 6), (-5, 3), (1000, 1)], start=1):
            cres.fb("X").set("IN", x)
            cres.fb("Y").set("IN", y)
            cres.inject("X.REQ")
            cnf = (await crec.wait("CLI", "CNF", k))[k - 1]
            assert cnf.values == {"QO": True, "STATUS": "OK", "RD_1": x + y}
        ind = srec.of("SRV", "IND")[0]
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 20, "RD_2": 6}


async def test_client_to_absent_server_fails_init() -> None:
    """INIT+ against a port nobody listens on answers INITO QO=FALSE NO_SOCKET."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running_device() as dev:
        res, rec = new_resource(dev)
        _client(res, port)
        res.inject("CLI.INIT")
        (inito,) = await rec.wait("CLI", "INITO")
        assert inito.values == {"QO": False, "STATUS": "NO_SOCKET"}
        res.inject("X.REQ")
        (cnf,) = await rec.wait("CLI", "CNF")
        assert cnf.values["QO"] is False
        assert cnf.values["STATUS"] == "NO_SOCKET"


async def test_server_gone_terminates_client_and_reinit_recovers() -> None:
    """When the server closes, the client fires INITO QO=FALSE TERMINATED; re-INIT reconnects."""
    async with running_device("server") as sdev, running_device("client") as cdev:
        sres, srec = new_resource(sdev, "S")
        port = await _server(sres, srec)
        cres, crec = new_resource(cdev, "C")
        _client(cres, port)
        cres.inject("CLI.INIT")
        await crec.wait("CLI", "INITO")
        sres.write_parameter("SRV.QI", "FALSE")
        sres.inject("SRV.INIT")
        inits = await crec.wait("CLI", "INITO", 2)
        assert inits[1].values == {"QO": False, "STATUS": "TERMINATED"}
        sres.write_parameter("SRV.QI", "TRUE")
        sres.write_parameter("SRV.ID", f"127.0.0.1:{port}")
        sres.inject("SRV.INIT")
        await srec.wait("SRV", "INITO", 3)
        cres.inject("CLI.INIT")
        inits = await crec.wait("CLI", "INITO", 3)
        assert inits[2].values == {"QO": True, "STATUS": "OK"}
        cres.fb("X").set("IN", 2)
        cres.fb("Y").set("IN", 3)
        cres.inject("X.REQ")
        (cnf,) = await crec.wait("CLI", "CNF")
        assert cnf.values["RD_1"] == 5


async def test_server_survives_client_leaving_and_malformed_request() -> None:
    """A client sending garbage gives one IND QO=FALSE; after it leaves the server still serves."""
    async with running_device("server") as sdev, running_device("client") as cdev:
        sres, srec = new_resource(sdev, "S")
        port = await _server(sres, srec)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as bad:
            bad.sendall(bytes.fromhex("4400000001"))  # RD_1, then RD_2 waits for more
            bad.sendall(b"\x99")  # where RD_2's DINT tag is due
            (ind,) = await srec.wait("SRV", "IND")
        assert ind.values["QO"] is False
        assert ind.values["STATUS"] == "DATA_TYPE_ERROR"
        cres, crec = new_resource(cdev, "C")
        _client(cres, port)
        cres.inject("CLI.INIT")
        await crec.wait("CLI", "INITO")
        cres.fb("X").set("IN", 40)
        cres.fb("Y").set("IN", 2)
        cres.inject("X.REQ")
        (cnf,) = await crec.wait("CLI", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK", "RD_1": 42}


async def test_split_tcp_segments_are_reassembled() -> None:
    """A request arriving one byte at a time still makes exactly one IND with both values."""
    async with running_device("server") as sdev:
        sres, srec = new_resource(sdev, "S")
        port = await _server(sres, srec)
        with socket.create_connection(("127.0.0.1", port), timeout=2) as peer:
            peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in bytes.fromhex("44000000074400000023"):
                peer.sendall(bytes([b]))
            (ind,) = await srec.wait("SRV", "IND")
            assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 7, "RD_2": 35}
            peer.settimeout(2)
            assert peer.recv(16) == bytes.fromhex("440000002a")


async def test_endless_request_is_cut_off() -> None:
    """An unfinished request growing past 1 MiB fires IND RECV_FAILED instead of buffering on."""
    async with running_device("server") as sdev:
        sres, srec = new_resource(sdev, "S")
        comm_fb(sres, "SRV", "SERVER_0_17", "127.0.0.1:0")
        sres.start()
        sres.inject("SRV.INIT")
        await srec.wait("SRV", "INITO")
        port = sres.fb("SRV").layer.local_address[1]  # type: ignore[attr-defined]
        text = b"\x50\xff\xff" + b"a" * 0xFFFF  # a full-length STRING
        with socket.create_connection(("127.0.0.1", port), timeout=2) as peer:
            # the 17th never ends; sent from a thread so the loop keeps reading
            await asyncio.to_thread(peer.sendall, text * 16 + text[:-1])
            (ind,) = await srec.wait("SRV", "IND")
        assert ind.values["QO"] is False
        assert ind.values["STATUS"] == "RECV_FAILED"


async def test_server_caps_its_clients() -> None:
    """Past MAX_SERVER_CLIENTS connections the server closes newcomers and counts them."""
    from fb.net.layers.ip import MAX_SERVER_CLIENTS

    async with running_device("server") as sdev:
        sres, srec = new_resource(sdev, "S")
        port = await _server(sres, srec)
        layer = sres.fb("SRV").layer  # type: ignore[attr-defined]
        peers = [socket.create_connection(("127.0.0.1", port), timeout=5)
                 for _ in range(MAX_SERVER_CLIENTS + 2)]
        try:
            assert await asyncio.to_thread(peers[-1].recv, 1) == b""  # closed by the server
            assert layer.refused_clients == 2
            peers[0].sendall(bytes.fromhex("44000000014400000002"))
            (ind,) = await srec.wait("SRV", "IND")
            assert ind.values["RD_2"] == 2
        finally:
            for p in peers:
                p.close()
