"""PUBLISH_n/SUBSCRIBE_n over fbdk[].ip[] (UDP unicast and multicast) on loopback."""

from __future__ import annotations

import socket

import pytest
from net_testkit import Recorder, comm_fb, new_resource, running_device

from fb.net.layers.ip import UdpSubscribeLayer
from testbed.runtime.resource import Resource


def _subscriber_port(res: Resource, name: str) -> int:
    layer = res.fb(name).layer  # type: ignore[attr-defined]
    assert isinstance(layer, UdpSubscribeLayer)
    address = layer.local_address
    assert address is not None
    return address[1]


async def _pub_sub_pair(res: Resource, rec: Recorder, sub_id: str, pub_id: str | None = None,
                        n: int = 1, types: tuple[str, ...] = ("DINT",)) -> None:
    """SUB (SUBSCRIBE_n, RDs typed by copy FBs) and PUB (PUBLISH_n fed by copy FBs), INITed."""
    comm_fb(res, "SUB", f"SUBSCRIBE_{n}", sub_id)
    for i, t in enumerate(types, start=1):
        res.create_fb(f"IN{i}", f"{t}2{t}")
        res.create_fb(f"OUT{i}", f"{t}2{t}")
        res.connect(f"SUB.RD_{i}", f"OUT{i}.IN")
    res.start()
    res.inject("SUB.INIT")
    (inito,) = await rec.wait("SUB", "INITO")
    assert inito.values == {"QO": True, "STATUS": "OK"}
    if pub_id is None:
        pub_id = f"127.0.0.1:{_subscriber_port(res, 'SUB')}"
    comm_fb(res, "PUB", f"PUBLISH_{n}", pub_id)
    for i in range(1, n + 1):
        res.connect(f"IN{i}.OUT", f"PUB.SD_{i}")
    res.connect(f"IN{n}.CNF", "PUB.REQ")
    for i in range(1, n):
        res.connect(f"IN{i}.CNF", f"IN{i + 1}.REQ")
    res.inject("PUB.INIT")
    (pinit,) = await rec.wait("PUB", "INITO")
    assert pinit.values == {"QO": True, "STATUS": "OK"}


async def test_unicast_publish_reaches_subscriber() -> None:
    """A DINT published to the subscriber's port arrives as RD_1 with IND QO=TRUE/OK."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        await _pub_sub_pair(res, rec, "127.0.0.1:0")
        res.fb("IN1").set("IN", 26)
        res.inject("IN1.REQ")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 26}
        (cnf,) = await rec.wait("PUB", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}


async def test_three_values_in_one_datagram() -> None:
    """PUBLISH_3 -> SUBSCRIBE_3 carries BOOL, INT and STRING in one message."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        await _pub_sub_pair(res, rec, "fbdk[].ip[127.0.0.1:0]", n=3,
                            types=("BOOL", "INT", "STRING"))
        for i, v in enumerate((True, -1234, "hello"), start=1):
            res.fb(f"IN{i}").set("IN", v)
        res.inject("IN1.REQ")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": True, "RD_2": -1234,
                              "RD_3": "hello"}


async def test_multicast_group_reaches_two_subscribers_in_two_devices() -> None:
    """One datagram to 239.192.0.2 reaches subscribers of that group in two devices (loop on)."""
    group = "239.192.0.2:61590"
    async with running_device("a") as dev_a, running_device("b") as dev_b:
        res_b, rec_b = new_resource(dev_b)
        comm_fb(res_b, "SUB", "SUBSCRIBE_1", group)
        res_b.create_fb("OUT1", "DINT2DINT")
        res_b.connect("SUB.RD_1", "OUT1.IN")
        res_b.start()
        res_b.inject("SUB.INIT")
        await rec_b.wait("SUB", "INITO")
        res_a, rec_a = new_resource(dev_a)
        await _pub_sub_pair(res_a, rec_a, group, pub_id=group)
        res_a.fb("IN1").set("IN", 77)
        res_a.inject("IN1.REQ")
        (ind_a,) = await rec_a.wait("SUB", "IND")
        (ind_b,) = await rec_b.wait("SUB", "IND")
        assert ind_a.values["RD_1"] == 77
        assert ind_b.values["RD_1"] == 77


async def test_malformed_datagram_gives_status_and_counts() -> None:
    """Garbage and wrong-type datagrams fire IND QO=FALSE (FORTE texts); good data still flows."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        await _pub_sub_pair(res, rec, "127.0.0.1:0")
        port = _subscriber_port(res, "SUB")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"\x44\x00", ("127.0.0.1", port))  # DINT cut short
            await rec.wait("SUB", "IND", 1)
            raw.sendto(b"\x43\x00\x05", ("127.0.0.1", port))  # an INT where a DINT is due
            await rec.wait("SUB", "IND", 2)
            raw.sendto(bytes.fromhex("4400000005ff"), ("127.0.0.1", port))  # a byte too many
            inds = await rec.wait("SUB", "IND", 3)
        assert [(e.values["QO"], e.values["STATUS"]) for e in inds] == [
            (False, "RECV_FAILED"), (False, "DATA_TYPE_ERROR"), (False, "RECV_FAILED")]
        sub = res.fb("SUB")
        assert sub.statistics().receive_failures == 3  # type: ignore[attr-defined]
        assert sub.layer.malformed == 3  # type: ignore[attr-defined]
        res.fb("IN1").set("IN", 5)
        res.inject("IN1.REQ")
        ind = (await rec.wait("SUB", "IND", 4))[3]
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 5}


async def test_init_minus_terminates_and_reinit_reopens() -> None:
    """INIT- answers INITO QO=FALSE TERMINATED and frees the port; INIT+ opens it again."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        await _pub_sub_pair(res, rec, "127.0.0.1:0")
        port = _subscriber_port(res, "SUB")
        res.write_parameter("SUB.QI", "FALSE")
        res.inject("SUB.INIT")
        inits = await rec.wait("SUB", "INITO", 2)
        assert inits[1].values == {"QO": False, "STATUS": "TERMINATED"}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", port))  # the subscriber released it
        res.inject("IN1.REQ")  # published while nobody listens: not an error for UDP
        await rec.wait("PUB", "CNF")
        res.write_parameter("SUB.QI", "TRUE")
        res.write_parameter("SUB.ID", f"127.0.0.1:{port}")
        res.inject("SUB.INIT")
        inits = await rec.wait("SUB", "INITO", 3)
        assert inits[2].values == {"QO": True, "STATUS": "OK"}
        res.fb("IN1").set("IN", 9)
        res.inject("IN1.REQ")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values["RD_1"] == 9


async def test_req_with_qi_false_is_inhibited_and_uninitialised_is_no_socket() -> None:
    """REQ with QI=FALSE gives CNF INHIBITED; REQ before INIT gives CNF NO_SOCKET."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "PUB", "PUBLISH_1", "127.0.0.1:9")
        res.write_parameter("PUB.SD_1", "DINT#1")
        res.start()
        res.inject("PUB.REQ")
        await rec.wait("PUB", "CNF", 1)
        res.write_parameter("PUB.QI", "FALSE")
        res.inject("PUB.REQ")
        cnfs = await rec.wait("PUB", "CNF", 2)
        assert [c.values for c in cnfs] == [{"QO": False, "STATUS": "NO_SOCKET"},
                                            {"QO": False, "STATUS": "INHIBITED"}]


@pytest.mark.parametrize(
    ("comm_id", "status"),
    [
        ("", "INVALID_ID"),
        ("nosuch[].ip[127.0.0.1:1]", "INVALID_ID"),
        ("fbdk[].ip[127.0.0.1]", "INVALID_ID"),
        ("fbdk[].ip[999.1.1.1:5]", "INVALID_ID"),
        ("fbdk[].tsn[239.1.0.1:48401]", "INVALID_ID"),
        ("fbdk[.ip[1.2.3.4:5]", "INVALID_ID"),
        ("fbdk[].ip[203.0.113.1:61499]", "NO_SOCKET"),  # not a local address to bind
    ],
)
async def test_bad_ids_fail_init_with_status(comm_id: str, status: str) -> None:
    """A bad or unusable ID answers INITO QO=FALSE with FORTE's status, no exception."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        res.create_fb("SUB", "SUBSCRIBE_1")
        res.write_parameter("SUB.QI", "TRUE")
        res.fb("SUB").set("ID", comm_id)
        res.start()
        res.inject("SUB.INIT")
        (inito,) = await rec.wait("SUB", "INITO")
        assert inito.values == {"QO": False, "STATUS": status}
        assert res.statistics().faults == 0


async def test_stop_closes_the_socket() -> None:
    """Stopping the resource closes an open subscriber so its port is free again."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        await _pub_sub_pair(res, rec, "127.0.0.1:0")
        port = _subscriber_port(res, "SUB")
        res.stop()
        assert res.fb("SUB").layer is None  # type: ignore[attr-defined]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", port))


async def test_multicast_on_a_named_interface() -> None:
    """`ip[group:port@127.0.0.1]` publishes and joins on that interface (FORTE's @ syntax)."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        group = "fbdk[].ip[239.192.0.2:61594@127.0.0.1]"
        await _pub_sub_pair(res, rec, group, pub_id=group)
        res.fb("IN1").set("IN", -3)
        res.inject("IN1.REQ")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values["RD_1"] == -3


async def test_raw_over_udp_carries_text_as_is() -> None:
    """raw[].ip[]: the datagram is the STRING's bytes, and a foreign datagram arrives as text."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_1", "raw[].ip[127.0.0.1:0]")
        res.start()
        res.inject("SUB.INIT")
        await rec.wait("SUB", "INITO")
        port = _subscriber_port(res, "SUB")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.settimeout(2)
            comm_fb(res, "PUB", "PUBLISH_1", f"raw[].ip[127.0.0.1:{listener.getsockname()[1]}]")
            res.write_parameter("PUB.SD_1", "'level=3'")
            res.connect("PUB.INITO", "PUB.REQ")
            res.inject("PUB.INIT")
            await rec.wait("PUB", "CNF")
            assert listener.recv(64) == b"level=3"
            listener.sendto(b"hello raw", ("127.0.0.1", port))
            (ind,) = await rec.wait("SUB", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": "hello raw"}
