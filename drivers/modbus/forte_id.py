"""FORTE's Modbus communication-layer ID string, parsed into a frozen value.

Grammar (current FORTE documentation; optional parts in parentheses)::

    modbus[(tcp:)ip:port:(slave):pollMs:readAddrs:sendAddrs(:respTO:byteTO)]

Address lists are comma-separated items `<table><address>` or
`<table><first>..<last>`, with tables `c` (coil), `d` (discrete input),
`h` (holding register) and `i` (input register), e.g. `c0..7,d3,h0..3,i6142`.
`sendAddrs` may name only coils and holding registers. Timeouts are in ms.

After `port` the number of fields tells which optional parts are present:
3 = poll:read:send, 4 = slave:poll:read:send, 5 = poll:read:send:respTO:byteTO,
6 = all. An empty slave or port takes FORTE's default (no unit id / 502).
RTU (`rtu:`) IDs and the older FORTE 2.0 syntax with function codes are
rejected with a clear message. Every error names the part that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.errors import DriverConfigError
from drivers.modbus.points import ModbusDeviceConfig, ModbusPoint, ModbusTable

__all__ = ["ForteAddressRange", "ForteModbusId", "parse_forte_modbus_id"]

FORTE_DEFAULT_PORT = 502

_TABLE_PREFIX: dict[str, ModbusTable] = {
    "c": ModbusTable.COIL,
    "d": ModbusTable.DISCRETE_INPUT,
    "h": ModbusTable.HOLDING_REGISTER,
    "i": ModbusTable.INPUT_REGISTER,
}
_PREFIX_OF = {table: prefix for prefix, table in _TABLE_PREFIX.items()}
_ITEM = re.compile(r"^([A-Za-z])(\d+)(?:\.\.(\d+))?$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ForteAddressRange:
    """Consecutive addresses `first..last` (inclusive) of one table."""

    table: ModbusTable
    first: int
    last: int

    @property
    def count(self) -> int:
        """Number of addresses in the range."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        prefix = _PREFIX_OF[self.table]
        if self.first == self.last:
            return f"{prefix}{self.first}"
        return f"{prefix}{self.first}..{self.last}"


@dataclass(frozen=True, slots=True)
class ForteModbusId:
    """A parsed FORTE Modbus TCP client ID."""

    host: str
    port: int
    unit_id: int | None
    poll_interval_ms: int
    read: tuple[ForteAddressRange, ...]
    send: tuple[ForteAddressRange, ...]
    response_timeout_ms: int | None = None
    byte_timeout_ms: int | None = None

    def __str__(self) -> str:
        slave = "" if self.unit_id is None else str(self.unit_id)
        text = (
            f"modbus[tcp:{self.host}:{self.port}:{slave}:{self.poll_interval_ms}:"
            f"{','.join(map(str, self.read))}:{','.join(map(str, self.send))}"
        )
        if self.response_timeout_ms is not None:
            text += f":{self.response_timeout_ms}:{self.byte_timeout_ms or 0}"
        return text + "]"

    def to_device_config(self) -> ModbusDeviceConfig:
        """A device config with one raw point per address, named like `h3` or `c0`.

        Read addresses become read-only points, send addresses writable ones
        (an address in both lists is one writable point). Coils and discrete
        inputs are BOOL, registers UINT16; FB-side typing happens above this.
        """
        writable = {(r.table, a) for r in self.send for a in range(r.first, r.last + 1)}
        seen: set[tuple[ModbusTable, int]] = set()
        points: list[ModbusPoint] = []
        for ranges in (self.read, self.send):
            for address_range in ranges:
                for address in range(address_range.first, address_range.last + 1):
                    key = (address_range.table, address)
                    if key in seen:
                        continue
                    seen.add(key)
                    points.append(
                        ModbusPoint(
                            name=f"{_PREFIX_OF[address_range.table]}{address}",
                            table=address_range.table,
                            address=address,
                            writable=key in writable,
                        )
                    )
        config = ModbusDeviceConfig(
            host=self.host,
            port=self.port,
            unit_id=1 if self.unit_id is None else self.unit_id,
            poll_interval_s=self.poll_interval_ms / 1000,
            points=tuple(points),
        )
        if self.response_timeout_ms:
            config = config.model_copy(
                update={"request_timeout_s": self.response_timeout_ms / 1000}
            )
        return config


def _error(text: str, part: str, problem: str) -> DriverConfigError:
    return DriverConfigError(f"Modbus ID {text!r}: {part}: {problem}")


def _parse_int(text: str, part: str, value: str, low: int, high: int) -> int:
    if not value.isdigit():
        raise _error(text, part, f"{value!r} is not a whole number")
    number = int(value)
    if not low <= number <= high:
        raise _error(text, part, f"{number} is outside {low}..{high}")
    return number


def _parse_addresses(text: str, part: str, value: str) -> tuple[ForteAddressRange, ...]:
    if not value.strip():
        return ()
    ranges: list[ForteAddressRange] = []
    for raw_item in value.split(","):
        item = raw_item.strip()
        match = _ITEM.match(item)
        if match is None:
            raise _error(text, part, f"{item!r} is not an address like c0, h3 or i10..12")
        prefix, first_text, last_text = match.groups()
        table = _TABLE_PREFIX.get(prefix.lower())
        if table is None:
            raise _error(
                text,
                part,
                f"{item!r}: unknown table prefix {prefix!r} "
                "(c=coil, d=discrete input, h=holding register, i=input register)",
            )
        first = int(first_text)
        last = first if last_text is None else int(last_text)
        if last > 0xFFFF:
            raise _error(text, part, f"{item!r}: address {last} is above 65535")
        if last < first:
            raise _error(text, part, f"{item!r}: range runs backwards ({first}..{last})")
        ranges.append(ForteAddressRange(table, first, last))
    return tuple(ranges)


def parse_forte_modbus_id(text: str) -> ForteModbusId:
    """Parse `modbus[...]` (or just its bracket content) into a `ForteModbusId`."""
    body = text.strip()
    if body.lower().startswith("modbus["):
        if not body.endswith("]"):
            raise _error(text, "brackets", "missing the closing ']'")
        body = body[len("modbus[") : -1]
    elif "[" in body or "]" in body:
        raise _error(text, "layer", "only the modbus[...] layer is understood here")
    fields = body.split(":")
    if fields and fields[0].lower() == "rtu":
        raise _error(text, "protocol", "Modbus RTU is not supported; use tcp")
    if fields and fields[0].lower() == "tcp":
        fields = fields[1:]
    if len(fields) < 5:
        raise _error(
            text,
            "fields",
            f"expected ip:port:(slave):pollMs:readAddrs:sendAddrs(:respTO:byteTO), "
            f"got {len(fields)} fields",
        )
    host, port_text, rest = fields[0], fields[1], fields[2:]
    if not host or not _HOST.match(host):
        raise _error(text, "ip", f"{host!r} is not an IP address or host name")
    port = FORTE_DEFAULT_PORT if port_text == "" else _parse_int(text, "port", port_text, 1, 65535)
    slave_text: str | None = None
    timeouts: list[str] = []
    if len(rest) == 3:
        poll_text, read_text, send_text = rest
    elif len(rest) == 4:
        slave_text, poll_text, read_text, send_text = rest
    elif len(rest) == 5:
        poll_text, read_text, send_text, *timeouts = rest
    elif len(rest) == 6:
        slave_text, poll_text, read_text, send_text, *timeouts = rest
    else:
        raise _error(
            text,
            "fields",
            f"{len(rest)} fields after the port; expected 3 to 6 "
            "((slave):pollMs:readAddrs:sendAddrs(:respTO:byteTO))",
        )
    unit_id = None if not slave_text else _parse_int(text, "slave", slave_text, 0, 255)
    poll_ms = _parse_int(text, "pollMs", poll_text, 1, 86_400_000)
    read = _parse_addresses(text, "readAddrs", read_text)
    send = _parse_addresses(text, "sendAddrs", send_text)
    for address_range in send:
        if not address_range.table.is_client_writable:
            raise _error(
                text,
                "sendAddrs",
                f"{address_range} is a {address_range.table}, which a client cannot write",
            )
    if not read and not send:
        raise _error(text, "readAddrs/sendAddrs", "both address lists are empty")
    response_ms = byte_ms = None
    if timeouts:
        response_ms = _parse_int(text, "respTO", timeouts[0], 1, 300_000)
        byte_ms = _parse_int(text, "byteTO", timeouts[1], 0, 3_600_000)
    return ForteModbusId(
        host=host,
        port=port,
        unit_id=unit_id,
        poll_interval_ms=poll_ms,
        read=read,
        send=send,
        response_timeout_ms=response_ms,
        byte_timeout_ms=byte_ms,
    )
