"""OPC UA FBs carry array nodes (the pump's vibration block) into ARRAY inputs."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from io_testkit import LIBRARY, SPEED, io_fb, new_resource, running_device

from drivers.sim.plc import SimulatedPlc
from testbed.fbdef import interface
from testbed.model import Interface
from testbed.runtime.service import ServiceFB

pytestmark = pytest.mark.asyncio(loop_scope="module")

VIBRATION = "Plant/Pump1/Bearing/Vibration"
BLOCK = 4096


class TEST_WAVE_SINK_4096(ServiceFB):
    """Keeps every block its ARRAY input W receives."""

    INTERFACE: ClassVar[Interface] = interface(ei="REQ(W)", inputs=f"W:LREAL[{BLOCK}]")

    def on_REQ(self) -> None:
        self.__dict__.setdefault("blocks", []).append(list(self.W))


class TEST_WAVE_SINK_1024(ServiceFB):
    """An ARRAY input of the wrong length for the pump's blocks."""

    INTERFACE: ClassVar[Interface] = interface(ei="REQ(W)", inputs="W:LREAL[1024]")

    def on_REQ(self) -> None:
        self.__dict__.setdefault("blocks", []).append(list(self.W))


for _sink in (TEST_WAVE_SINK_4096, TEST_WAVE_SINK_1024):
    LIBRARY.add(_sink.FB_TYPE, "tests/fb/io", override=True)


async def test_read_delivers_a_block_to_an_array_input(plc: SimulatedPlc) -> None:
    """OPCUA_READ_1 of the waveform node: CNF with a 4096-sample RD, sampled by the sink."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.browse_path(VIBRATION))
        sink = res.create_fb("Sink", "TEST_WAVE_SINK_4096")
        res.connect("Read.RD_1", "Sink.W")
        res.connect("Read.CNF", "Sink.REQ")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is True, cnf.values["STATUS"]
        block = cnf.values["RD_1"]
        assert isinstance(block, list)
        assert len(block) == BLOCK
        assert all(isinstance(x, float) for x in block)
        await rec.until(lambda: bool(sink.__dict__.get("blocks")), what="sink got a block")
        assert sink.__dict__["blocks"][0] == block


async def test_subscribe_delivers_each_new_block(plc: SimulatedPlc) -> None:
    """OPCUA_SUBSCRIBE_1 fires IND per published block; the sink sees distinct blocks."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Sub", "OPCUA_SUBSCRIBE_1", ENDPOINT=plc.opcua_endpoint,
              INTERVAL="T#20ms", NODE_1=plc.node_id(VIBRATION))
        sink = res.create_fb("Sink", "TEST_WAVE_SINK_4096")
        res.connect("Sub.RD_1", "Sink.W")
        res.connect("Sub.IND", "Sink.REQ")
        res.connect("START.COLD", "Sub.INIT")
        res.start()
        inds = await rec.wait("Sub", "IND", count=3, timeout_s=8.0)
        assert all(i.values["QO"] is True and i.values["STATUS"] == "OK" for i in inds)
        blocks = sink.__dict__["blocks"]
        assert len(blocks) >= 3
        assert all(len(b) == BLOCK for b in blocks)
        assert all(a != b for a, b in itertools.pairwise(blocks[1:]))


async def test_block_of_wrong_shape_gives_type_mismatch_status(plc: SimulatedPlc) -> None:
    """A 4096-sample block into ARRAY[0..1023]: QO=FALSE, STATUS names shape and pin."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(VIBRATION))
        sink = res.create_fb("Sink", "TEST_WAVE_SINK_1024")
        res.connect("Read.RD_1", "Sink.W")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is False
        assert cnf.values["STATUS"] == (
            "BadTypeMismatch: RD_1: ARRAY[0..1023] OF LREAL needs shape [1024], got [4096]")
        assert cnf.values["RD_1"] is None  # never had a good value
        assert sink.W == [0.0] * 1024


async def test_scalar_into_array_and_array_into_scalar_are_mismatches(
    plc: SimulatedPlc,
) -> None:
    """A scalar node into an ARRAY input, and a block into a UINT input, both answer
    BadTypeMismatch while a well-typed RD of the same request still updates."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_3", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED), NODE_2=plc.node_id(VIBRATION),
              NODE_3=plc.node_id(SPEED))
        res.create_fb("Sink", "TEST_WAVE_SINK_4096")
        res.create_fb("Ctu", "E_CTU")
        res.create_fb("Ctu3", "E_CTU")
        res.connect("Read.RD_1", "Sink.W")
        res.connect("Read.RD_2", "Ctu.PV")
        res.connect("Read.RD_3", "Ctu3.PV")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is False
        status = str(cnf.values["STATUS"])
        assert status.startswith("BadTypeMismatch: RD_1: ARRAY[0..4095] OF LREAL needs an array")
        assert cnf.values["RD_2"] == 0  # the UINT default: the block did not land in it
        speed = cnf.values["RD_3"]
        assert isinstance(speed, int)
        assert 1000 < speed < 1900


async def test_subscribed_block_of_wrong_shape_gives_bad_ind(plc: SimulatedPlc) -> None:
    """OPCUA_SUBSCRIBE_1 into a too-short ARRAY: IND with QO=FALSE and BadTypeMismatch."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Sub", "OPCUA_SUBSCRIBE_1", ENDPOINT=plc.opcua_endpoint,
              INTERVAL="T#20ms", NODE_1=plc.node_id(VIBRATION))
        res.create_fb("Sink", "TEST_WAVE_SINK_1024")
        res.connect("Sub.RD_1", "Sink.W")
        res.connect("START.COLD", "Sub.INIT")
        res.start()
        (ind,) = await rec.wait("Sub", "IND")
        assert ind.values["QO"] is False
        assert str(ind.values["STATUS"]).startswith("BadTypeMismatch: RD_1:")


async def test_modbus_register_into_an_array_is_a_data_type_error(plc: SimulatedPlc) -> None:
    """A Modbus FB uses its own status family: DATA_TYPE_ERROR naming the RD."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "MODBUS_READ_1", DEVICE=f"127.0.0.1:{plc.modbus_port}:1",
              ADDR="i0")
        res.create_fb("Sink", "TEST_WAVE_SINK_1024")
        res.connect("Read.RD_1", "Sink.W")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is False
        assert str(cnf.values["STATUS"]).startswith(
            "DATA_TYPE_ERROR: RD_1: ARRAY[0..1023] OF LREAL needs an array")
