"""loc[name] between resources of one device, and fbdk[]/raw[].mqtt[] through a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from net_testkit import comm_fb, new_resource, running_device

from drivers.mqtt import EmbeddedBroker, EmbeddedBrokerConfig, MqttClient, MqttClientConfig
from fb.net.layers.mqtt import MqttLayer


async def test_local_channel_between_two_resources() -> None:
    """PUBLISH_2 in one resource reaches both SUBSCRIBE_2 of that loc[] name, not another name's."""
    async with running_device() as dev:
        a, rec_a = new_resource(dev, "A")
        b, rec_b = new_resource(dev, "B")
        for res, name in ((a, "S1"), (b, "S2")):
            comm_fb(res, name, "SUBSCRIBE_2", "loc[line1]")
        comm_fb(b, "OTHER", "SUBSCRIBE_2", "loc[line2]")
        comm_fb(a, "PUB", "PUBLISH_2", "loc[line1]")
        a.write_parameter("PUB.SD_1", "DINT#7")
        a.write_parameter("PUB.SD_2", "'seven'")
        a.connect("PUB.INITO", "PUB.REQ")
        for res in (a, b):
            res.start()
        for res, name in ((a, "S1"), (b, "S2"), (b, "OTHER")):
            res.inject(f"{name}.INIT")
        await rec_a.wait("S1", "INITO")
        await rec_b.wait("OTHER", "INITO")
        a.inject("PUB.INIT")
        (ind_a,) = await rec_a.wait("S1", "IND")
        (ind_b,) = await rec_b.wait("S2", "IND")
        assert ind_a.values == {"QO": True, "STATUS": "OK", "RD_1": 7, "RD_2": "seven"}
        assert ind_b.values == ind_a.values
        assert rec_b.of("OTHER", "IND") == []


async def test_local_count_mismatch_is_data_type_error() -> None:
    """A loc[] message with fewer values than a subscriber's RDs fires IND DATA_TYPE_ERROR."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_2", "loc[x]")
        comm_fb(res, "PUB", "PUBLISH_1", "loc[x]")
        res.write_parameter("PUB.SD_1", "INT#1")
        res.connect("SUB.INITO", "PUB.INIT")
        res.connect("PUB.INITO", "PUB.REQ")
        res.start()
        res.inject("SUB.INIT")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values["QO"] is False
        assert ind.values["STATUS"] == "DATA_TYPE_ERROR"


async def test_local_rejects_client_server() -> None:
    """loc[] is for PUBLISH/SUBSCRIBE: a CLIENT with loc[] fails INIT with INVALID_ID."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "CLI", "CLIENT_1", "loc[x]")
        res.start()
        res.inject("CLI.INIT")
        (inito,) = await rec.wait("CLI", "INITO")
        assert inito.values == {"QO": False, "STATUS": "INVALID_ID"}


@pytest_asyncio.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """An embedded amqtt broker on a free loopback port."""
    async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as b:
        yield b


async def test_fbdk_over_mqtt_publish_subscribe(broker: EmbeddedBroker) -> None:
    """fbdk[].mqtt[]: PUBLISH_1 -> broker -> SUBSCRIBE_1 carries a LREAL; INITO waits for SUBACK."""
    url = f"tcp://127.0.0.1:{broker.port}"
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_1", f"fbdk[].mqtt[{url}, sub1, plant/level]")
        res.create_fb("OUT", "LREAL2LREAL")
        res.connect("SUB.RD_1", "OUT.IN")
        comm_fb(res, "PUB", "PUBLISH_1", f"fbdk[].mqtt[{url}, pub1, plant/level]")
        res.write_parameter("PUB.SD_1", "LREAL#1.25")
        res.connect("SUB.INITO", "PUB.INIT")
        res.connect("PUB.INITO", "PUB.REQ")
        res.start()
        res.inject("SUB.INIT")
        (ind,) = await rec.wait("SUB", "IND", timeout_s=10)
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 1.25}
        (cnf,) = await rec.wait("PUB", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}


async def test_raw_over_mqtt_is_the_string_bytes(broker: EmbeddedBroker) -> None:
    """raw[].mqtt[]: the broker sees SD_1's text as is; a foreign payload arrives as RD_1 text."""
    url = f"tcp://127.0.0.1:{broker.port}"
    async with MqttClient(MqttClientConfig(port=broker.port)) as probe, \
            running_device() as dev:
        await probe.wait_connected()
        inbox = await probe.subscribe("raw/out", qos=0)
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_1", f"raw[].mqtt[{url}, rsub, raw/in]")
        comm_fb(res, "PUB", "PUBLISH_1", f"raw[].mqtt[{url}, rpub, raw/out]")
        res.write_parameter("PUB.SD_1", "'{\"level\": 3}'")
        res.connect("PUB.INITO", "PUB.REQ")
        res.start()
        res.inject("SUB.INIT")
        res.inject("PUB.INIT")
        await rec.wait("SUB", "INITO", timeout_s=10)
        message = await inbox.get()
        assert message.payload == b'{"level": 3}'
        await probe.publish("raw/in", "grüße".encode(), qos=0)
        (ind,) = await rec.wait("SUB", "IND", timeout_s=10)
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": "grüße"}


async def test_mqtt_without_broker_fails_init() -> None:
    """fbdk[].mqtt[] to a port with no broker answers INITO QO=FALSE NO_SOCKET, no exception."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "PUB", "PUBLISH_1", "fbdk[].mqtt[tcp://127.0.0.1:1, p, t]")
        res.start()
        res.inject("PUB.INIT")
        (inito,) = await rec.wait("PUB", "INITO", timeout_s=10)
        assert inito.values == {"QO": False, "STATUS": "NO_SOCKET"}
        assert res.statistics().faults == 0


async def test_mqtt_bad_params_are_invalid_id() -> None:
    """An mqtt[] layer without clientID and topic fails INIT with INVALID_ID."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "PUB", "PUBLISH_1", "fbdk[].mqtt[tcp://127.0.0.1:1883]")
        res.start()
        res.inject("PUB.INIT")
        (inito,) = await rec.wait("PUB", "INITO")
        assert inito.values == {"QO": False, "STATUS": "INVALID_ID"}


async def test_mqtt_broker_restart_is_survived() -> None:
    """While the broker is down REQ answers CNF SEND_FAILED; after it restarts data flows again."""
    async with EmbeddedBroker(EmbeddedBrokerConfig(port=0)) as first:
        port = first.port
        url = f"tcp://127.0.0.1:{port}"
        async with running_device() as dev:
            res, rec = new_resource(dev)
            comm_fb(res, "SUB", "SUBSCRIBE_1", f"fbdk[].mqtt[{url}, rs, t/x]")
            comm_fb(res, "PUB", "PUBLISH_1", f"fbdk[].mqtt[{url}, rp, t/x]")
            res.create_fb("IN", "DINT2DINT")
            res.create_fb("OUT", "DINT2DINT")
            res.connect("IN.OUT", "PUB.SD_1")
            res.connect("IN.CNF", "PUB.REQ")
            res.connect("SUB.RD_1", "OUT.IN")
            res.start()
            res.inject("SUB.INIT")
            res.inject("PUB.INIT")
            await rec.wait("SUB", "INITO", timeout_s=10)
            await rec.wait("PUB", "INITO", timeout_s=10)
            await first.aclose()
            pub = res.fb("PUB").layer  # type: ignore[attr-defined]
            assert isinstance(pub, MqttLayer)
            assert pub.client is not None
            async with asyncio.timeout(5):
                await pub.client.wait_disconnected()
            res.fb("IN").set("IN", 1)
            res.inject("IN.REQ")
            (cnf,) = await rec.wait("PUB", "CNF")
            assert cnf.values == {"QO": False, "STATUS": "SEND_FAILED"}
            async with EmbeddedBroker(EmbeddedBrokerConfig(port=port)):
                await pub.client.wait_connected(timeout_s=15)
                for attempt in range(2, 40):  # until the subscriber has resubscribed
                    res.fb("IN").set("IN", attempt)
                    res.inject("IN.REQ")
                    try:
                        (ind,) = await rec.wait("SUB", "IND", timeout_s=0.25)
                    except AssertionError:
                        continue
                    break
                else:
                    raise AssertionError("no data through the restarted broker within 10 s")
                assert ind.values["QO"] is True
                assert ind.values["RD_1"] >= 2
