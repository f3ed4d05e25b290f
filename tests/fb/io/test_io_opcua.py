"""OPC UA service FBs in a running device against a simulated pump PLC on loopback."""

from __future__ import annotations

import asyncio

import pytest
from io_testkit import SPEED, SPEED_COMMAND, io_fb, new_resource, running_device

from drivers.sim import FaultKind, FaultSpec
from drivers.sim.plc import SimulatedPlc

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_read_returns_plausible_values_with_good_quality(plc: SimulatedPlc) -> None:
    """OPCUA_READ_2 reads speed (NodeId) and flow (browse path) in one request."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_2", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED), NODE_2=plc.browse_path("Plant/Pump1/Hydraulics/Flow"))
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (init,) = await rec.wait("Read", "INITO")
        assert init.values == {"QO": True, "STATUS": "OK"}
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is True
        assert cnf.values["STATUS"] == "OK"
        speed, flow = cnf.values["RD_1"], cnf.values["RD_2"]
        assert isinstance(speed, float)
        assert 1000.0 < speed < 1900.0
        assert isinstance(flow, float)
        assert flow > 0.0


async def test_read_converts_to_the_connected_type(plc: SimulatedPlc) -> None:
    """An RD connected to a UINT input (E_CTU.PV) delivers a rounded integer."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED))
        res.create_fb("Ctu", "E_CTU")
        res.connect("Read.RD_1", "Ctu.PV")
        res.connect("START.COLD", "Read.INIT")
        res.connect("Read.INITO", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        speed = cnf.values["RD_1"]
        assert isinstance(speed, int)
        assert 1000 < speed < 1900


async def test_write_commands_the_pump(plc: SimulatedPlc) -> None:
    """OPCUA_WRITE_1 on SpeedCommand changes the model's speed command."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Write", "OPCUA_WRITE_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED_COMMAND), SD_1="LREAL#1234.0")
        res.connect("START.COLD", "Write.INIT")
        res.connect("Write.INITO", "Write.REQ")
        res.start()
        (cnf,) = await rec.wait("Write", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}
        await plc.wait_scans(2)
        assert plc.model.input_value("speed_command_rpm") == 1234.0


async def test_write_to_read_only_node_reports_bad_status(plc: SimulatedPlc) -> None:
    """Writing a measured value is refused by the server: QO=FALSE, STATUS names why."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Write", "OPCUA_WRITE_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED), SD_1="LREAL#1.0")
        res.connect("START.COLD", "Write.INIT")
        res.connect("Write.INITO", "Write.REQ")
        res.start()
        (cnf,) = await rec.wait("Write", "CNF")
        assert cnf.values["QO"] is False
        assert str(cnf.values["STATUS"]).startswith("Bad")


async def test_subscribe_fires_ind_on_every_change(plc: SimulatedPlc) -> None:
    """OPCUA_SUBSCRIBE_1 on the scan counter fires IND with increasing values."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Sub", "OPCUA_SUBSCRIBE_1", ENDPOINT=plc.opcua_endpoint,
              INTERVAL="T#20ms", NODE_1=plc.node_id("Plant/Status/ScanCount"))
        res.connect("START.COLD", "Sub.INIT")
        res.start()
        (init,) = await rec.wait("Sub", "INITO")
        assert init.values["QO"] is True
        inds = await rec.wait("Sub", "IND", count=5)
        counts = [ind.values["RD_1"] for ind in inds]
        assert all(ind.values["QO"] is True for ind in inds)
        assert counts == sorted(counts)
        assert counts[-1] > counts[0]


async def test_method_call_stops_and_starts_the_plc(plc: SimulatedPlc) -> None:
    """OPCUA_METHOD_0_0 calls Plant/Stop and Plant/Start; the PLC program follows."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Stop", "OPCUA_METHOD_0_0", ENDPOINT=plc.opcua_endpoint,
              METHOD=plc.browse_path("Plant/Stop"))
        io_fb(res, "Start", "OPCUA_METHOD_0_0", ENDPOINT=plc.opcua_endpoint,
              METHOD=plc.node_id("Plant/Start"), OBJECT=plc.node_id("Plant"))
        res.connect("START.COLD", "Stop.INIT")
        res.connect("Stop.INITO", "Start.INIT")
        res.connect("Start.INITO", "Stop.REQ")
        res.start()
        (cnf,) = await rec.wait("Stop", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}
        assert plc.program_running is False
        res.inject("Start.REQ")
        (cnf,) = await rec.wait("Start", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK"}
        assert plc.program_running is True


async def test_unknown_node_fails_init_with_its_status(plc: SimulatedPlc) -> None:
    """INIT on a node the server lacks: INITO QO=FALSE with the OPC UA status name."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.browse_path("Plant/Pump1/NoSuchThing"))
        res.connect("START.COLD", "Read.INIT")
        res.start()
        (init,) = await rec.wait("Read", "INITO")
        assert init.values["QO"] is False
        assert str(init.values["STATUS"]).startswith("Bad")


async def test_malformed_endpoint_and_node_are_invalid_id() -> None:
    """A bad ENDPOINT or NODE string is refused at INIT with STATUS INVALID_ID: reason."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "A", "OPCUA_READ_1", ENDPOINT="http://nowhere", NODE_1="ns=2;s=X")
        io_fb(res, "B", "OPCUA_READ_1", ENDPOINT="opc.tcp://127.0.0.1:1", NODE_1="ns=x;q=")
        res.connect("START.COLD", "A.INIT")
        res.connect("A.INITO", "B.INIT")
        res.start()
        (a,) = await rec.wait("A", "INITO")
        (b,) = await rec.wait("B", "INITO")
        for fired in (a, b):
            assert fired.values["QO"] is False
            assert str(fired.values["STATUS"]).startswith("INVALID_ID: ")
        assert "opc.tcp://" in str(a.values["STATUS"])


async def test_req_before_init_answers_not_initialised() -> None:
    """REQ on an FB that was never initialised answers QO=FALSE at once."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT="opc.tcp://127.0.0.1:1",
              NODE_1="ns=2;s=X")
        res.connect("START.COLD", "Read.REQ")
        res.start()
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is False
        assert cnf.values["STATUS"] == "NOT_INITIALISED"


async def test_server_outage_turns_quality_bad_and_values_resume(plc: SimulatedPlc) -> None:
    """PLC outage: the network keeps running, IND/CNF go QO=FALSE, values resume within 2 s."""
    async with running_device() as device:
        res, rec = new_resource(device)
        io_fb(res, "Sub", "OPCUA_SUBSCRIBE_1", ENDPOINT=plc.opcua_endpoint,
              INTERVAL="T#20ms", NODE_1=plc.node_id("Plant/Status/ScanCount"))
        io_fb(res, "Read", "OPCUA_READ_1", ENDPOINT=plc.opcua_endpoint,
              NODE_1=plc.node_id(SPEED))
        res.create_fb("Cycle", "E_CYCLE")
        res.write_parameter("Cycle.DT", "T#50ms")
        res.connect("START.COLD", "Sub.INIT")
        res.connect("Sub.INITO", "Read.INIT")
        res.connect("Read.INITO", "Cycle.START")
        res.connect("Cycle.EO", "Read.REQ")
        res.start()
        await rec.wait("Sub", "IND", count=3)
        await rec.wait("Read", "CNF", count=3)
        start = plc.model.time_s
        plc.add_fault(FaultSpec(kind=FaultKind.COMM_OUTAGE, target="plc", start_s=start + 0.1,
                                end_s=start + 1.0))
        await rec.until(lambda: any(e.values["QO"] is False for e in rec.of("Sub", "IND")),
                        what="bad-quality IND")
        await rec.until(lambda: any(e.values["QO"] is False for e in rec.of("Read", "CNF")),
                        what="bad-quality CNF")
        bad = next(e for e in rec.of("Sub", "IND") if e.values["QO"] is False)
        assert str(bad.values["STATUS"]).startswith("Bad")
        async with asyncio.timeout(10.0):
            while plc.statistics().in_outage or plc.statistics().outages == 0:
                await plc.wait_scans(1)
        returned = len(rec.events)
        await rec.until(lambda: any(e.values["QO"] is True for e in rec.events[returned:]
                                    if e.fb == "Sub" and e.event == "IND"),
                        timeout_s=2.0, what="IND values after the server's return")
        await rec.until(lambda: any(e.values["QO"] is True for e in rec.events[returned:]
                                    if e.fb == "Read" and e.event == "CNF"),
                        timeout_s=2.0, what="CNF values after the server's return")
        assert res.statistics().faults == 0
