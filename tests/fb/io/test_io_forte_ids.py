"""FORTE `opc_ua[...]` and `modbus[...]` IDs on CLIENT/PUBLISH/SUBSCRIBE against a pump PLC."""

from __future__ import annotations

import pytest
from io_testkit import SPEED, SPEED_COMMAND, io_fb, new_resource, running_device

from drivers.sim.plc import SimulatedPlc

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_opcua_ids_read_write_subscribe_and_call(plc: SimulatedPlc) -> None:
    """READ (path and NodeId pairs), WRITE via PUBLISH, SUBSCRIBE and CALL_METHOD all work."""
    async with running_device() as dev:
        ep = plc.opcua_endpoint
        idx = plc.namespace_index
        speed_path = plc.browse_path(SPEED)
        flow_id = f"{idx}:s=Plant.Pump1.Hydraulics.Flow"
        res, rec = new_resource(dev)
        io_fb(res, "Read", "CLIENT_0_2", ID=f"opc_ua[READ;{ep}#;{speed_path};,{flow_id}]")
        io_fb(res, "Write", "PUBLISH_1",
              ID=f"opc_ua[WRITE;{ep}#;,{idx}:s={SPEED_COMMAND.replace('/', '.')}]",
              SD_1="LREAL#1500.0")
        io_fb(res, "Sub", "SUBSCRIBE_1",
              ID=f"opc_ua[SUBSCRIBE;{ep}#;,{idx}:s=Plant.Status.ScanCount]")
        io_fb(res, "Stop", "CLIENT_0_0",
              ID=f"opc_ua[CALL_METHOD;{ep}#;{plc.browse_path('Plant/Stop')}]")
        for fb in ("Read", "Write", "Sub", "Stop"):
            res.connect("START.COLD", f"{fb}.INIT")
        res.start()
        for fb in ("Read", "Write", "Sub", "Stop"):
            (init,) = await rec.wait(fb, "INITO")
            assert init.values == {"QO": True, "STATUS": "OK"}, fb
        res.inject("Read.REQ")
        (cnf,) = await rec.wait("Read", "CNF")
        assert cnf.values["QO"] is True
        speed, flow = cnf.values["RD_1"], cnf.values["RD_2"]
        assert isinstance(speed, float)
        assert speed > 1000.0
        assert isinstance(flow, float)
        assert flow > 0.0
        res.inject("Write.REQ")
        (pub,) = await rec.wait("Write", "CNF")
        assert pub.values["QO"] is True
        inds = await rec.wait("Sub", "IND", count=3)
        assert all(ind.values["QO"] is True for ind in inds)
        await plc.wait_scans(2)
        assert plc.model.input_value("speed_command_rpm") == 1500.0
        res.inject("Stop.REQ")
        (stop,) = await rec.wait("Stop", "CNF")
        assert stop.values["QO"] is True
        assert plc.program_running is False


async def test_modbus_ids_client_and_subscribe(plc: SimulatedPlc) -> None:
    """CLIENT_1_1 polls i10 (CNF per cycle) and writes h0 on REQ; SUBSCRIBE_2 polls i0..1."""
    async with running_device() as dev:
        port = plc.modbus_port
        res, rec = new_resource(dev)
        io_fb(res, "Client", "CLIENT_1_1", ID=f"modbus[tcp:127.0.0.1:{port}:1:20:i10:h0]",
              SD_1="UINT#700")
        io_fb(res, "Sub", "SUBSCRIBE_2", ID=f"modbus[127.0.0.1:{port}:20:i0..1:]")
        res.connect("START.COLD", "Client.INIT")
        res.connect("START.COLD", "Sub.INIT")
        res.start()
        for fb in ("Client", "Sub"):
            (init,) = await rec.wait(fb, "INITO")
            assert init.values == {"QO": True, "STATUS": "OK"}, fb
        inds = await rec.wait("Sub", "IND", count=3)
        assert all(ind.values["QO"] is True for ind in inds)
        speed_x10 = inds[-1].values["RD_1"]
        assert isinstance(speed_x10, int)
        assert speed_x10 > 10_000
        (first,) = await rec.wait("Client", "CNF")
        assert first.values["RD_1"] == 1800
        res.inject("Client.REQ")
        await rec.until(lambda: any(e.values["RD_1"] == 700 for e in rec.of("Client", "CNF")),
                        what="the written command read back")
        assert plc.model.input_value("speed_command_rpm") == 700.0


async def test_mismatched_ids_fail_init_with_invalid_id() -> None:
    """An action on the wrong FB, a count mismatch or a local-server action: INVALID_ID."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "A", "SUBSCRIBE_1", ID="opc_ua[READ;opc.tcp://127.0.0.1:1#;,2:s=X]")
        io_fb(res, "B", "CLIENT_0_2", ID="opc_ua[READ;opc.tcp://127.0.0.1:1#;,2:s=X]")
        io_fb(res, "C", "PUBLISH_1", ID="opc_ua[WRITE;/Objects/1:X]")
        io_fb(res, "D", "SUBSCRIBE_1", ID="modbus[127.0.0.1:1502:100:i0..1:]")
        io_fb(res, "E", "CLIENT_0_1", ID="modbus[127.0.0.1:1502:100:x0:]")
        for fb in "ABCDE":
            res.connect("START.COLD", f"{fb}.INIT")
        res.start()
        for fb in "ABCDE":
            (init,) = await rec.wait(fb, "INITO")
            assert init.values == {"QO": False, "STATUS": "INVALID_ID"}, fb
