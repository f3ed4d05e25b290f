"""Simulated PLC: a pump served over real OPC UA and Modbus servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.modbus import ModbusClientSession, ModbusDeviceConfig, ModbusPoint
from drivers.opcua import OpcUaClientConfig, OpcUaClientSession, OpcUaReconnectConfig
from drivers.sim import FaultKind, FaultSpec, ManualClock, ProfileError, PumpModel, load_profile
from drivers.sim.plc import PlcConfig, PlcState, SimulatedPlc, default_profile_path

LOOPBACK = PlcConfig(opcua_port=0, modbus_port=0, scan_ms=10.0)
SPEED = "Plant/Pump1/Drive/ShaftSpeed"
SPEED_COMMAND = "Plant/Pump1/Drive/SpeedCommand"


def pump_plc(config: PlcConfig = LOOPBACK) -> SimulatedPlc:
    return SimulatedPlc.from_profile_file(default_profile_path("pump"), config, seed=7)


def modbus_config(plc: SimulatedPlc) -> ModbusDeviceConfig:
    """Raw views of the pump's registers as a client without the profile sees them."""
    return ModbusDeviceConfig(
        port=plc.modbus_port,
        unit_id=1,
        request_timeout_s=0.5,
        points=(
            ModbusPoint(name="speed_cmd", table="holding_register", address=0, writable=True),
            ModbusPoint(name="valve_cmd", table="holding_register", address=1, scale=0.001,
                        writable=True),
            ModbusPoint(name="speed", table="input_register", address=0, scale=0.1),
            ModbusPoint(name="current", table="input_register", address=1, scale=0.01),
            ModbusPoint(name="flow", table="input_register", address=4, scale=0.01),
            ModbusPoint(name="pressure", table="input_register", address=5, scale=0.001),
            ModbusPoint(name="vib_rms", table="input_register", address=8, data_type="FLOAT32"),
            ModbusPoint(name="speed_cmd_readback", table="input_register", address=10),
        ),
    )


def opcua_config(plc: SimulatedPlc, **overrides: object) -> OpcUaClientConfig:
    config = OpcUaClientConfig(endpoint=plc.opcua_endpoint, connect_timeout_s=3.0,
                               request_timeout_s=2.0)
    return config.model_copy(update=overrides)


async def eventually(check: object, timeout_s: float = 5.0) -> None:
    """Poll an async predicate until it holds (a functional deadline)."""
    async with asyncio.timeout(timeout_s):
        # polls a remote server: there is no local event to wait on
        while not await check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plc() -> AsyncIterator[SimulatedPlc]:
    """One running pump PLC for the read/write tests of this module."""
    async with pump_plc() as running:
        await running.wait_scans(30)
        yield running


async def test_pump_values_over_opcua_are_plausible(plc: SimulatedPlc) -> None:
    """At the default command the pump turns near 1800 rpm, delivers flow and pressure."""
    async with OpcUaClientSession(opcua_config(plc)) as session:
        speed, flow, pressure, current = await session.read([
            plc.node_id(SPEED),
            plc.browse_path("Plant/Pump1/Hydraulics/Flow"),
            plc.node_id("Plant/Pump1/Hydraulics/DischargePressure"),
            plc.node_id("Plant/Pump1/Drive/MotorCurrent"),
        ])
    assert all(r.good for r in (speed, flow, pressure, current))
    assert isinstance(speed.value, float)
    assert 1500.0 < speed.value < 1900.0
    assert isinstance(flow.value, float)
    assert flow.value > 1.0
    assert isinstance(pressure.value, float)
    assert pressure.value > 0.1
    assert isinstance(current.value, float)
    assert current.value > 0.5


async def test_pump_values_over_modbus_match_the_model(plc: SimulatedPlc) -> None:
    """Input registers carry the scaled process values of the latest scan."""
    async with ModbusClientSession(modbus_config(plc), poll=False) as session:
        speed = await session.read("speed")
        flow = await session.read("flow")
        vib = await session.read("vib_rms")
        readback = await session.read("speed_cmd_readback")
    state = plc.model.state()
    assert speed == pytest.approx(state["shaft_speed_rpm"], abs=30.0)
    assert flow == pytest.approx(state["flow_m3h"], rel=0.2)
    assert isinstance(vib, float)
    assert vib > 0.0
    assert readback == round(plc.model.input_value("speed_command_rpm"))


async def test_modbus_speed_setpoint_changes_the_pump_speed(plc: SimulatedPlc) -> None:
    """Writing holding register 0 commands the VFD; the shaft follows, OPC UA mirrors it."""
    async with ModbusClientSession(modbus_config(plc), poll=False) as session:
        await session.write("speed_cmd", 900)

        async def slowed() -> bool:
            return float(await session.read("speed")) < 1000.0

        await eventually(slowed)
    assert plc.model.input_value("speed_command_rpm") == 900.0
    async with OpcUaClientSession(opcua_config(plc)) as ua_session:
        command = await ua_session.read_value(plc.node_id(SPEED_COMMAND))
    assert command == 900.0
    assert plc.statistics().modbus_commands >= 1


async def test_opcua_speed_command_reaches_the_model_and_modbus(plc: SimulatedPlc) -> None:
    """Writing the SpeedCommand node commands the pump and updates holding register 0."""
    async with OpcUaClientSession(opcua_config(plc)) as session:
        await session.write({plc.node_id(SPEED_COMMAND): 1500.0})
    async with ModbusClientSession(modbus_config(plc), poll=False) as mb:

        async def mirrored() -> bool:
            return await mb.read("speed_cmd") == 1500

        await eventually(mirrored)
    assert plc.model.input_value("speed_command_rpm") == 1500.0


async def test_out_of_range_command_is_clamped(plc: SimulatedPlc) -> None:
    """A valve command above 1 saturates at fully open, as a real actuator does."""
    async with OpcUaClientSession(opcua_config(plc)) as session:
        await session.write({plc.node_id("Plant/Pump1/Valve/Opening"): 7.5})
        await plc.wait_scans(3)
        opening = await session.read_value(plc.node_id("Plant/Pump1/Valve/Opening"))
    assert plc.model.input_value("discharge_valve_opening") == 1.0
    assert opening == 1.0


async def test_engineering_units_are_in_the_address_space(plc: SimulatedPlc) -> None:
    """Each measured variable has an EngineeringUnits property with its unit."""
    async with OpcUaClientSession(opcua_config(plc)) as session:
        units = await session.read_value(f"{plc.browse_path(SPEED)}/0:EngineeringUnits")
    assert getattr(getattr(units, "DisplayName", None), "Text", None) == "rpm"


async def test_methods_stop_start_reset() -> None:
    """Stop coasts the pump down, Start brings it back, Reset restores the initial command."""
    async with pump_plc() as plc, OpcUaClientSession(opcua_config(plc)) as session:
        await plc.wait_scans(5)
        await session.call_method(plc.browse_path("Plant/Stop"))
        await plc.wait_scans(2)
        assert await session.read_value(plc.node_id("Plant/Status/Running")) is False

        async def stopped() -> bool:
            return float(await session.read_value(plc.node_id(SPEED))) < 200.0

        await eventually(stopped)
        await session.write({plc.node_id(SPEED_COMMAND): 1200.0})
        await session.call_method(plc.browse_path("Plant/Start"))

        async def running() -> bool:
            return float(await session.read_value(plc.node_id(SPEED))) > 1000.0

        await eventually(running)
        assert plc.model.input_value("speed_command_rpm") == 1200.0
        plc.add_fault(FaultSpec(kind=FaultKind.SENSOR_STUCK, target="flow_m3h"))
        await session.call_method(plc.browse_path("Plant/Reset"))
        await plc.wait_scans(2)
        assert plc.model.faults == ()
        assert plc.model.input_value("speed_command_rpm") == 1800.0
        assert await session.read_value(plc.node_id(SPEED_COMMAND)) == 1800.0
        assert plc.statistics().method_calls == 3


async def test_comm_outage_closes_both_servers_then_they_return() -> None:
    """In a comm_outage clients are refused; afterwards both servers answer on the same ports."""
    async with pump_plc() as plc:
        await plc.wait_scans(2)
        ports = (plc.opcua_port, plc.modbus_port)
        start = plc.model.time_s
        plc.add_fault(FaultSpec(kind=FaultKind.COMM_OUTAGE, target="plc", start_s=start,
                                end_s=start + 3.0))  # outlasts both refused attempts

        async def down() -> bool:
            return plc.statistics().in_outage

        await eventually(down, timeout_s=2.0)  # from the model's next step
        with pytest.raises((ConnectionLost, DriverTimeout)):
            async with ModbusClientSession(modbus_config(plc).model_copy(
                    update={"connect_timeout_s": 0.5}), poll=False):
                pass
        with pytest.raises((ConnectionLost, DriverTimeout)):
            async with OpcUaClientSession(opcua_config(plc, connect_timeout_s=1.0)):
                pass

        async def back() -> bool:
            return not plc.statistics().in_outage

        await eventually(back, timeout_s=10.0)
        assert (plc.opcua_port, plc.modbus_port) == ports
        async with ModbusClientSession(modbus_config(plc), poll=False) as mb:
            assert float(await mb.read("speed")) > 1000.0
        reconnect = OpcUaReconnectConfig(enabled=False)
        async with OpcUaClientSession(opcua_config(plc, reconnect=reconnect)) as session:
            assert float(await session.read_value(plc.node_id(SPEED))) > 1000.0
        assert plc.statistics().outages == 1


async def test_virtual_clock_drives_scans_deterministically() -> None:
    """On a manual clock scans and model steps happen only when the clock advances."""
    clock = ManualClock()
    config = LOOPBACK.model_copy(update={"scan_ms": 250.0})  # exact in binary
    plc = SimulatedPlc.from_profile_file(default_profile_path("pump"), config, clock=clock)
    async with plc:
        await asyncio.sleep(0.05)
        assert plc.statistics().scans == 0
        for _ in range(10):
            clock.advance(0.25)
            async with asyncio.timeout(5.0):
                await plc.wait_scans(1)
        assert plc.statistics().scans == 10
        assert plc.model.time_s == pytest.approx(2.5)


async def test_plc_is_one_shot() -> None:
    """A closed PLC cannot be entered again; aclose is idempotent."""
    plc = pump_plc()
    async with plc:
        pass
    await plc.aclose()
    assert plc.state is PlcState.CLOSED
    with pytest.raises(DriverError, match="one-shot"):
        async with plc:
            pass


async def test_profile_for_another_model_is_rejected() -> None:
    """A tank profile on a pump model names the signals the pump does not have."""
    profile = load_profile(default_profile_path("tank"))
    with pytest.raises(ProfileError, match=r"inflow_valve_opening.*is not a signal"):
        SimulatedPlc(PumpModel(seed=1), profile, LOOPBACK, source="tank.yaml")


async def test_malformed_profile_file_names_file_line_and_field(tmp_path: Path) -> None:
    """A bad address in a profile file is reported as file:line: field."""
    text = default_profile_path("pump").read_text(encoding="utf-8").replace(
        "address: 4, data_type: UINT16", "address: -4, data_type: UINT16")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        SimulatedPlc.from_profile_file(bad, LOOPBACK)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "address: -4" in row)
    assert f"{bad}:{line}: modbus.points[6].address" in str(info.value)


async def test_port_taken_without_fallback_is_a_clear_error() -> None:
    """Two PLCs on one Modbus port: the second fails naming the port; with fallback it moves."""
    async with pump_plc() as first:
        taken = LOOPBACK.model_copy(update={"modbus_port": first.modbus_port})
        with pytest.raises(DriverConfigError, match=str(first.modbus_port)):
            async with pump_plc(taken):
                pass
        moving = taken.model_copy(update={"fallback_to_free_port": True})
        async with pump_plc(moving) as second:
            assert second.modbus_port != first.modbus_port


async def test_conveyor_coil_and_tank_node_commands_reach_their_models() -> None:
    """Other plants: a Modbus coil stops the conveyor belt; an OPC UA write moves the tank valve."""
    conveyor = SimulatedPlc.from_profile_file(default_profile_path("conveyor"), LOOPBACK)
    tank = SimulatedPlc.from_profile_file(default_profile_path("tank"), LOOPBACK)
    async with conveyor, tank:
        coil = ModbusDeviceConfig(port=conveyor.modbus_port, unit_id=2, points=(
            ModbusPoint(name="belt_run", table="coil", address=0, writable=True),))
        async with ModbusClientSession(coil, poll=False) as session:
            await session.write("belt_run", False)
            await conveyor.wait_scans(3)
            assert await session.read("belt_run") is False
        assert conveyor.model.input_value("belt_run") is False
        async with OpcUaClientSession(opcua_config(tank)) as ua_session:
            await ua_session.write({tank.node_id("Plant/Tank1/InflowValve/Command"): 0.25})
        await tank.wait_scans(3)
        assert tank.model.input_value("inflow_valve_opening") == 0.25


async def test_a_modbus_write_while_the_plc_restarts_after_an_outage_is_taken() -> None:
    """Modbus listens again before the OPC UA server is back: a write landing in between is
    applied by the next scans, not overwritten when the restart publishes the commands."""
    conveyor = SimulatedPlc.from_profile_file(default_profile_path("conveyor"), LOOPBACK)
    async with conveyor:
        await conveyor.wait_scans(2)
        coil = ModbusDeviceConfig(port=conveyor.modbus_port, unit_id=2, connect_timeout_s=0.2,
                                  points=(ModbusPoint(name="belt_run", table="coil", address=0,
                                                      writable=True),))
        start = conveyor.model.time_s
        conveyor.add_fault(FaultSpec(kind=FaultKind.COMM_OUTAGE, target="plc", start_s=start,
                                     end_s=start + 0.5))

        async def down() -> bool:
            return conveyor.statistics().in_outage

        await eventually(down, timeout_s=2.0)
        async with asyncio.timeout(6.0):
            while True:  # connect as soon as the Modbus server listens again
                try:
                    async with ModbusClientSession(coil, poll=False) as session:
                        await session.write("belt_run", False)
                        break
                except (ConnectionLost, DriverTimeout):
                    await asyncio.sleep(0.01)
        assert conveyor.statistics().in_outage  # written inside the restart window

        async def back() -> bool:
            return not conveyor.statistics().in_outage

        await eventually(back, timeout_s=6.0)
        await conveyor.wait_scans(3)
        assert conveyor.model.input_value("belt_run") is False
