"""OPCUA_METHOD_n_m with arguments and MODBUS_WRITE refusals, against purpose-built servers."""

from __future__ import annotations

from collections.abc import Sequence

from io_testkit import io_fb, new_resource, running_device

from drivers.modbus import ModbusPoint, ModbusServer, ModbusTable
from drivers.opcua import (
    AddressSpaceSpec,
    ArgumentSpec,
    MethodSpec,
    ObjectSpec,
    OpcUaServer,
    OpcUaServerConfig,
)

SPACE = AddressSpaceSpec(nodes=(ObjectSpec(name="Calc", children=(
    MethodSpec(name="Scale",
               inputs=(ArgumentSpec(name="value", data_type="Double"),
                       ArgumentSpec(name="factor", data_type="Int32")),
               outputs=(ArgumentSpec(name="result", data_type="Double"),
                        ArgumentSpec(name="negative", data_type="Boolean"))),
)),))


async def scale(value: object, factor: object) -> Sequence[object]:
    if not isinstance(value, float) or not isinstance(factor, int):
        raise TypeError("Scale takes a Double and an Int32")
    if factor == 0:
        raise ValueError("factor 0")
    result = value * factor
    return [result, result < 0]


async def test_method_with_inputs_and_outputs() -> None:
    """OPCUA_METHOD_2_2 passes SD_1..2 as arguments and returns RD_1..2; a refused call is Bad."""
    config = OpcUaServerConfig(port=0, publish_current_time=False)
    async with OpcUaServer(config, SPACE, method_handlers={"Calc/Scale": scale}) as server, \
            running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Call", "OPCUA_METHOD_2_2", ENDPOINT=server.endpoint,
              METHOD=server.browse_path("Calc/Scale"), SD_1="LREAL#-1.5", SD_2="DINT#4")
        res.connect("START.COLD", "Call.INIT")
        res.connect("Call.INITO", "Call.REQ")
        res.start()
        (cnf,) = await rec.wait("Call", "CNF")
        assert cnf.values == {"QO": True, "STATUS": "OK", "RD_1": -6.0, "RD_2": True}
        res.write_parameter("Call.SD_2", "DINT#0")
        res.inject("Call.REQ")
        refused = (await rec.wait("Call", "CNF", count=2))[1]
        assert refused.values["QO"] is False
        assert refused.values["STATUS"] == "BadInvalidArgument"
        assert refused.values["RD_1"] == -6.0  # outputs keep the last good answer


async def test_write_to_a_read_only_register_is_refused() -> None:
    """MODBUS_WRITE_1 to a register the device does not let clients write: QO=FALSE + exception."""
    points = (ModbusPoint(name="ro", table=ModbusTable.HOLDING_REGISTER, address=0),
              ModbusPoint(name="rw", table=ModbusTable.HOLDING_REGISTER, address=1,
                          writable=True))
    async with ModbusServer(points, port=0) as server, running_device() as dev:
        res, rec = new_resource(dev)
        io_fb(res, "Bad", "MODBUS_WRITE_1", DEVICE=f"127.0.0.1:{server.port}", ADDR="h0",
              SD_1="UINT#5")
        io_fb(res, "Good", "MODBUS_WRITE_1", DEVICE=f"127.0.0.1:{server.port}", ADDR="h1",
              SD_1="UINT#6")
        res.connect("START.COLD", "Bad.INIT")
        res.connect("Bad.INITO", "Bad.REQ")
        res.connect("Bad.CNF", "Good.INIT")
        res.connect("Good.INITO", "Good.REQ")
        res.start()
        (bad,) = await rec.wait("Bad", "CNF")
        (good,) = await rec.wait("Good", "CNF")
        assert bad.values["QO"] is False
        assert bad.values["STATUS"] == "ILLEGAL_DATA_ADDRESS"
        assert good.values == {"QO": True, "STATUS": "OK"}
        assert server.get("rw") == 6
        assert server.get("ro") == 0
