"""IEC 61131-3 literals, wrap-around and conversions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.errors import LiteralError
from testbed.types import (
    ELEMENTARY,
    convert_by_name,
    elementary,
    format_value,
    parse_literal,
    parse_value,
    to_real32,
)


@pytest.mark.parametrize(
    ("text", "type_name", "value"),
    [
        ("DINT#26", "DINT", 26),
        ("16#AFFE", None, 0xAFFE),
        ("2#1010", None, 10),
        ("8#17", None, 15),
        ("INT#-32768", "INT", -32768),
        ("BYTE#16#FF", "BYTE", 255),
        ("T#1s500ms", "TIME", 1_500_000_000),
        ("TIME#5ms", "TIME", 5_000_000),
        ("T#1.5s", "TIME", 1_500_000_000),
        ("t#1d2h3m4s5ms6us7ns", "TIME", 93784005006007),
        ("T#-250ms", "TIME", -250_000_000),
        ("REAL#1.0", "REAL", 1.0),
        ("LREAL#-1.5E3", "LREAL", -1500.0),
        ("'te$'xt$N'", "STRING", "te'xt\n"),
        ('"wide$"s"', "WSTRING", 'wide"s'),
        ("TRUE", "BOOL", True),
        ("BOOL#0", "BOOL", False),
        ("1_000", None, 1000),
        ("STRING#bare", "STRING", "bare"),
    ],
)
def test_parse_literal(text: str, type_name: str | None, value: object) -> None:
    """Typed and untyped literals give the documented type and Python value."""
    tv = parse_literal(text)
    assert (tv.type.name if tv.type else None) == type_name
    assert tv.value == value


@pytest.mark.parametrize("text", ["SINT#200", "USINT#-1", "UINT#70000", "T#1ms1s", "'open",
                                  "DINT#abc", "NOPE#1", ""])
def test_bad_literals_raise(text: str) -> None:
    """Out-of-range and malformed literals raise LiteralError, never another exception."""
    with pytest.raises(LiteralError):
        parse_literal(text)


def test_parse_value_reads_boot_file_forms() -> None:
    """Boot files write BOOL as 1/0/true and STRING bare or quoted; both are accepted."""
    assert parse_value("1", elementary("BOOL")).value is True
    assert parse_value("false", elementary("BOOL")).value is False
    assert parse_value("239.192.0.2:61499", elementary("WSTRING")).value == "239.192.0.2:61499"
    assert parse_value("'quoted'", elementary("STRING")).value == "quoted"
    assert parse_value("200", elementary("UINT")).value == 200
    assert parse_value("3", elementary("REAL")).value == 3.0
    with pytest.raises(LiteralError):
        parse_value("70000", elementary("UINT"))
    with pytest.raises(LiteralError):
        parse_value("5", elementary("TIME"))


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_signed_wrap_matches_twos_complement(value: int) -> None:
    """Assignment to INT/DINT/SINT/LINT wraps like a two's complement register."""
    for name in ("SINT", "INT", "DINT", "LINT"):
        t = ELEMENTARY[name]
        wrapped = t.coerce(value)
        assert t.min <= wrapped <= t.max
        assert (wrapped - value) % (1 << t.bits) == 0


@given(st.integers(min_value=0, max_value=2**70))
def test_unsigned_wrap(value: int) -> None:
    """Assignment to unsigned and bit-string types keeps the low bits."""
    for name in ("USINT", "UINT", "UDINT", "ULINT", "BYTE", "WORD", "DWORD", "LWORD"):
        t = ELEMENTARY[name]
        assert t.coerce(value) == value % (1 << t.bits)


@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_real_format_round_trips(value: float) -> None:
    """A REAL printed the FORTE way reads back as the same binary32 value."""
    text = format_value(ELEMENTARY["REAL"], value)
    assert to_real32(float(text)) == value


def test_time_format_round_trips() -> None:
    """TIME values print as compact T# literals that parse back."""
    for ns in (0, 1, 1_500_000_000, -250_000_000, 93784005006007):
        text = format_value(ELEMENTARY["TIME"], ns)
        assert parse_literal(text).value == ns


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (2.5, "REAL", "INT", 3),
        (-2.5, "REAL", "INT", -3),
        (70000, "DINT", "INT", 4464),
        (True, "BOOL", "UINT", 1),
        (0, "DINT", "BOOL", False),
        (1_500_000_000, "TIME", "DINT", 1500),
        (250, "UDINT", "TIME", 250_000_000),
        ("42", "STRING", "INT", 42),
        (42, "INT", "STRING", "42"),
        (True, "BOOL", "STRING", "TRUE"),
        (-1, "SINT", "BYTE", 255),
        (86_400_000_000_000 + 5, "DATE_AND_TIME", "TIME_OF_DAY", 5),
    ],
)
def test_conversions(value: object, src: str, dst: str, expected: object) -> None:
    """X_TO_Y conversions follow 4diac: rounding, wrap, TIME in milliseconds, text forms."""
    assert convert_by_name(value, src, dst) == expected
