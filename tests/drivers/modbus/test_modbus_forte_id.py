"""FORTE Modbus ID strings: the documented grammar and clear errors for bad parts."""

from __future__ import annotations

import pytest

from drivers.errors import DriverConfigError
from drivers.modbus import ForteAddressRange, ModbusTable, parse_forte_modbus_id

C, D, H, IR = (
    ModbusTable.COIL,
    ModbusTable.DISCRETE_INPUT,
    ModbusTable.HOLDING_REGISTER,
    ModbusTable.INPUT_REGISTER,
)


def test_documented_example_without_slave() -> None:
    """`modbus[tcp:127.0.0.1:502::20000:h0..3:]` has no slave, a 20 s poll and four registers."""
    parsed = parse_forte_modbus_id("modbus[tcp:127.0.0.1:502::20000:h0..3:]")
    assert (parsed.host, parsed.port, parsed.unit_id) == ("127.0.0.1", 502, None)
    assert parsed.poll_interval_ms == 20000
    assert parsed.read == (ForteAddressRange(H, 0, 3),)
    assert parsed.send == ()
    assert parsed.response_timeout_ms is None


def test_full_id_with_slave_lists_and_timeouts() -> None:
    """All optional parts: slave, mixed address lists, response and byte timeouts."""
    parsed = parse_forte_modbus_id(
        "modbus[tcp:192.168.0.10:5020:7:100:c0..7,d3,h0..3,i6142:c8,h10..11:500:50]"
    )
    assert parsed.unit_id == 7
    assert parsed.read == (
        ForteAddressRange(C, 0, 7),
        ForteAddressRange(D, 3, 3),
        ForteAddressRange(H, 0, 3),
        ForteAddressRange(IR, 6142, 6142),
    )
    assert parsed.send == (ForteAddressRange(C, 8, 8), ForteAddressRange(H, 10, 11))
    assert (parsed.response_timeout_ms, parsed.byte_timeout_ms) == (500, 50)
    assert parse_forte_modbus_id(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "unit_id", "timeouts"),
    [
        ("127.0.0.1:502:1000:h0:", None, (None, None)),
        ("modbus[127.0.0.1:502:1000:h0:]", None, (None, None)),
        ("modbus[TCP:127.0.0.1:502:3:1000:h0:]", 3, (None, None)),
        ("modbus[127.0.0.1:502:1000:h0::200:20]", None, (200, 20)),
        ("modbus[127.0.0.1:502:255:1000:h0::200:20]", 255, (200, 20)),
    ],
)
def test_optional_parts_are_told_apart_by_field_count(
    text: str, unit_id: int | None, timeouts: tuple[int | None, int | None]
) -> None:
    """3, 4, 5 or 6 fields after the port select which optional parts are present."""
    parsed = parse_forte_modbus_id(text)
    assert parsed.unit_id == unit_id
    assert (parsed.response_timeout_ms, parsed.byte_timeout_ms) == timeouts
    assert parsed.read == (ForteAddressRange(H, 0, 0),)


def test_empty_port_means_502() -> None:
    """An empty port takes FORTE's default 502."""
    assert parse_forte_modbus_id("modbus[10.0.0.1::1000:i0..1:]").port == 502


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("modbus[tcp:127.0.0.1:502::1000:h0..3:", "brackets"),
        ("modbus[rtu:/dev/ttyUSB0:19200:N:8:1::1:2000:i6142:h1]", "protocol"),
        ("modbus[tcp:127.0.0.1:502]", "fields"),
        ("modbus[tcp:127.0.0.1:502:1:2:3:h0:h1:4:5:6]", "fields"),
        ("modbus[tcp:bad host:502::1000:h0:]", "ip"),
        ("modbus[tcp:127.0.0.1:http::1000:h0:]", "port"),
        ("modbus[tcp:127.0.0.1:70000::1000:h0:]", "port"),
        ("modbus[tcp:127.0.0.1:502:300:1000:h0:]", "slave"),
        ("modbus[tcp:127.0.0.1:502::fast:h0:]", "pollMs"),
        ("modbus[tcp:127.0.0.1:502::0:h0:]", "pollMs"),
        ("modbus[tcp:127.0.0.1:502::1000:x0:]", "readAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:h5..2:]", "readAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:h0..70000:]", "readAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:h0,,h1:]", "readAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:3:]", "readAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:h0:i3]", "sendAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000::]", "readAddrs/sendAddrs"),
        ("modbus[tcp:127.0.0.1:502::1000:h0::x:5]", "respTO"),
        ("fbdk[].ip[127.0.0.1:61499]", "layer"),
    ],
)
def test_malformed_ids_name_the_bad_part(text: str, part: str) -> None:
    """Every malformed ID raises DriverConfigError quoting the ID and naming the bad part."""
    with pytest.raises(DriverConfigError) as info:
        parse_forte_modbus_id(text)
    assert f": {part}: " in str(info.value)
    assert text.strip() in str(info.value)


def test_to_device_config_builds_raw_points() -> None:
    """Read addresses become read-only points, send addresses writable ones, named by address."""
    parsed = parse_forte_modbus_id("modbus[127.0.0.1:5020:2:250:c0..1,i4:c1,h7:800:0]")
    config = parsed.to_device_config()
    assert [p.name for p in config.points] == ["c0", "c1", "i4", "h7"]
    assert [p.writable for p in config.points] == [False, True, False, True]
    assert (config.port, config.unit_id, config.poll_interval_s) == (5020, 2, 0.25)
    assert config.request_timeout_s == 0.8
