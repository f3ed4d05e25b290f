"""FBDK ASN.1 codec: byte compatibility with FORTE's captures, round trips and hostile input."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.fourdiac.fbdk_asn1 import (
    ARRAY_TAG,
    DEFAULT_STRUCT_TAG,
    ELEMENTARY_TAGS,
    Asn1DecodeError,
    Asn1EncodeError,
    FbdkType,
    decode,
    decode_many,
    encode,
    encode_many,
)
from testbed.types import ELEMENTARY, elementary, parse_value
from testbed.types.elementary import ElementaryType, Kind

FORTE_BYTES = Path(__file__).resolve().parents[2] / "../shared/4diac/fbdk-asn1/forte_bytes.json"
NS_PER_DAY = 86_400 * 10**9
CASES = json.loads(FORTE_BYTES.read_text())["cases"]
SINGLE_CASES = [c for c in CASES if "," not in c["type"]]
MULTI_CASES = [c for c in CASES if "," in c["type"]]


@dataclass(frozen=True)
class Arr:
    """A minimal ARRAY descriptor (the codec only needs element and dims)."""

    element: object
    dims: Sequence[object] = ((0, 0),)


@dataclass(frozen=True)
class Member:
    name: str
    type: object


@dataclass(frozen=True)
class Struct:
    """A minimal STRUCT descriptor."""

    members: Sequence[object]
    name: str = "S"


def case_value(case: dict[str, object]) -> object:
    """The value FORTE published: the literal parsed for the case's type.

    The DATE and TOD cases feed a DT literal through F_DT_TO_DATE / F_DT_TO_TOD, so
    the conversion is applied here (date part, time-of-day part).
    """
    type_name = str(case["type"])
    literal = str(case["literal"])
    if type_name in ("DATE", "TOD") and literal.startswith("DT#"):
        dt = parse_value(literal, elementary("DT")).value
        assert isinstance(dt, int)
        return dt - dt % NS_PER_DAY if type_name == "DATE" else dt % NS_PER_DAY
    return parse_value(literal, elementary(type_name)).value


def multi_points(case: dict[str, object]) -> list[tuple[FbdkType, object]]:
    names = str(case["type"]).split("(")[0].split(",")
    literals = [part.strip() for part in str(case["literal"]).split(",")]
    return [(n.strip(), parse_value(lit, elementary(n.strip())).value)
            for n, lit in zip(names, literals, strict=True)]


@pytest.mark.parametrize("case", SINGLE_CASES, ids=lambda c: f"{c['index']}-{c['type']}")
def test_encode_matches_forte_bytes(case: dict[str, object]) -> None:
    """Each value FORTE published encodes to exactly the bytes FORTE sent."""
    assert encode(str(case["type"]), case_value(case)).hex() == case["fbdk_hex"]


@pytest.mark.parametrize("case", SINGLE_CASES, ids=lambda c: f"{c['index']}-{c['type']}")
def test_decode_forte_bytes(case: dict[str, object]) -> None:
    """FORTE's bytes decode to the published value and consume the whole datagram."""
    data = bytes.fromhex(str(case["fbdk_hex"]))
    value, end = decode(str(case["type"]), data)
    assert value == case_value(case)
    assert end == len(data)
    assert decode_many([str(case["type"])], data) == [value]


@pytest.mark.parametrize("case", MULTI_CASES, ids=lambda c: f"{c['index']}")
def test_multi_value_datagram_matches_forte(case: dict[str, object]) -> None:
    """Several SDs are concatenated exactly as FORTE's PUBLISH_3 sent them, and decode back."""
    points = multi_points(case)
    data = encode_many(points)
    assert data.hex() == case["fbdk_hex"]
    assert decode_many([t for t, _ in points], data) == [v for _, v in points]


def test_every_forte_case_is_covered() -> None:
    """The capture file still holds the 24 cases this suite was written against."""
    assert len(SINGLE_CASES) == 23
    assert len(MULTI_CASES) == 1


def test_no_values_is_the_null_tag() -> None:
    """A PUBLISH_0 sends FORTE's NULL tag and a SUBSCRIBE_0 accepts only that."""
    assert encode_many([]) == b"\x05"
    assert decode_many([], b"\x05") == []
    with pytest.raises(Asn1DecodeError):
        decode_many([], b"")


def test_tags_follow_the_compliance_profile() -> None:
    """Tag bytes are APPLICATION (0x40) plus FORTE's EDataTypeTags numbers."""
    assert ELEMENTARY_TAGS["LINT"] == 0x45
    assert ELEMENTARY_TAGS["WSTRING"] == 0x55
    assert ELEMENTARY_TAGS["CHAR"] == 0x57
    assert ELEMENTARY_TAGS["LTIME"] == 0x5C
    assert ARRAY_TAG == 0x76
    assert DEFAULT_STRUCT_TAG == 0x61


# ----------------------------------------------------------------------------- arrays, structs


def test_array_of_int_has_one_element_tag() -> None:
    """A non-BOOL array is tag, count, one element tag, then untagged contents."""
    data = encode(Arr("INT", ((0, 2),)), [1, -2, 3])
    assert data.hex() == "76" "0003" "43" "0001" "fffe" "0003"
    assert decode(Arr("INT", ((0, 2),)), data) == ([1, -2, 3], len(data))


def test_array_of_bool_tags_every_element() -> None:
    """BOOL arrays carry each element as its own tagged BOOL, as FORTE does."""
    data = encode(Arr("BOOL"), [True, False, True])
    assert data.hex() == "76" "0003" "41" "40" "41"
    assert decode_many([Arr("BOOL")], data) == [[True, False, True]]


def test_array_of_strings() -> None:
    """Variable-length elements follow one another after the shared tag."""
    data = encode(Arr("STRING"), ["ab", ""])
    assert data.hex() == "76" "0002" "50" "0002" "6162" "0000"
    assert decode(Arr("STRING"), data)[0] == ["ab", ""]


def test_two_dimensional_array_is_nested() -> None:
    """An ARRAY[a..b, c..d] travels as an array of arrays and reads back as nested lists."""
    t = Arr(elementary("USINT"), ((0, 1), (0, 2)))
    value = [[1, 2, 3], [4, 5, 6]]
    data = encode(t, value)
    assert data.hex() == "76" "0002" "76" "0003" "46" "010203" "0003" "46" "040506"
    assert decode(t, data)[0] == value


def test_empty_array_is_count_only() -> None:
    """An empty array is the count alone, which is what FORTE's decoder expects."""
    assert encode(Arr("DINT"), []).hex() == "760000"
    assert decode(Arr("DINT"), bytes.fromhex("760000")) == ([], 3)


def test_struct_members_untagged_except_bool() -> None:
    """STRUCT content is the members in order, untagged, with BOOLs as tagged data points."""
    t = Struct([Member("on", "BOOL"), Member("n", "INT"), Member("s", "STRING")])
    value = {"on": True, "n": 5, "s": "x"}
    data = encode(t, value)
    assert data.hex() == "61" "41" "0005" "0001" "78"
    assert decode(t, data) == (value, len(data))


def test_struct_accepts_mapping_and_pairs_and_custom_tag() -> None:
    """Member lists may be a mapping or (name, type) pairs; `asn1_tag` overrides the tag."""

    @dataclass(frozen=True)
    class Tagged:
        members: object
        asn1_tag: int = 0x7F

    by_map = encode(Tagged({"a": "SINT", "b": "BOOL"}), {"a": -1, "b": False})
    by_pairs = encode(Tagged([("a", "SINT"), ("b", "BOOL")]), {"a": -1, "b": False})
    assert by_map == by_pairs == bytes.fromhex("7fff40")


def test_array_of_structs_and_struct_with_array() -> None:
    """Arrays of structs share the struct tag; a struct's array member keeps its count and tag."""
    point = Struct([Member("x", "INT"), Member("ok", "BOOL")], name="POINT")
    arr = Arr(point, ((1, 2),))
    value = [{"x": 1, "ok": True}, {"x": 2, "ok": False}]
    data = encode(arr, value)
    assert data.hex() == "76" "0002" "61" "0001" "41" "0002" "40"
    assert decode(arr, data)[0] == value
    holder = Struct([Member("pts", Arr("BYTE")), Member("n", "UDINT")])
    hv = {"pts": [0xAB, 0xCD], "n": 7}
    hdata = encode(holder, hv)
    assert hdata.hex() == "61" "0002" "51" "abcd" "00000007"
    assert decode(holder, hdata)[0] == hv


# ----------------------------------------------------------------------------- round trips


def _strategy(t: ElementaryType) -> st.SearchStrategy[object]:
    kind = t.kind
    if kind is Kind.BOOL:
        return st.booleans()
    if t.is_integer:
        return st.integers(t.min, t.max)
    if kind is Kind.REAL:
        return st.floats(width=32) if t.bits == 32 else st.floats()
    if kind is Kind.STRING:
        text = st.text(max_size=300)
        if t.name == "WSTRING":  # a leading BOM-like char is read as a BOM, as FORTE does
            return text.filter(lambda s: not s.startswith(("\ufeff", "\ufffe")))
        return text
    if kind is Kind.CHAR:
        if t.bits == 8:
            return st.characters(max_codepoint=0xFF)
        return st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
    return st.integers(-(1 << 63), (1 << 63) - 1)


ALL_TYPES = sorted({t.name for t in ELEMENTARY.values()})


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _expected_after_wire(t: ElementaryType, value: object) -> object:
    if t.kind is Kind.DURATION:  # microseconds on the wire, truncated toward zero
        assert isinstance(value, int)
        us = abs(value) // 1000 * (1 if value >= 0 else -1)
        return us * 1000
    return value


@pytest.mark.parametrize("type_name", ALL_TYPES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip_every_elementary_type(type_name: str, data: st.DataObject) -> None:
    """Every elementary type decodes back to what was encoded, over its full range."""
    t = elementary(type_name)
    value = data.draw(_strategy(t))
    wire = encode(t, value)
    assert wire[0] in (0x40, 0x41) if t.kind is Kind.BOOL else wire[0] == ELEMENTARY_TAGS[t.name]
    back, end = decode(t, wire)
    assert end == len(wire)
    assert _same(_expected_after_wire(t, value), back)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(ALL_TYPES), max_size=6).flatmap(
    lambda names: st.tuples(st.just(names),
                            st.tuples(*[_strategy(elementary(n)) for n in names]))))
def test_round_trip_concatenated_values(case: tuple[list[str], tuple[object, ...]]) -> None:
    """A message of several values decodes back value by value."""
    names, values = case
    wire = encode_many(list(zip(names, values, strict=True)))
    back = decode_many(names, wire)
    for n, v, b in zip(names, values, back, strict=True):
        assert _same(_expected_after_wire(elementary(n), v), b)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=50),
       st.lists(st.booleans(), max_size=50),
       st.lists(st.lists(st.text(max_size=5), min_size=2, max_size=2), max_size=10))
def test_round_trip_arrays_and_structs(ints: list[int], bools: list[bool],
                                       pairs: list[list[str]]) -> None:
    """Arrays of any length and structs holding arrays round-trip."""
    t = Struct([Member("i", Arr("DINT")), Member("b", Arr("BOOL")),
                Member("p", Arr("WSTRING", ((0, 9), (0, 1))))])
    value = {"i": ints, "b": bools, "p": pairs}
    assert decode(t, encode(t, value)) == (value, len(encode(t, value)))


# ----------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("case", SINGLE_CASES, ids=lambda c: f"{c['index']}-{c['type']}")
def test_truncated_forte_bytes_raise_decode_error(case: dict[str, object]) -> None:
    """Every proper prefix of a FORTE datagram is reported as truncated."""
    data = bytes.fromhex(str(case["fbdk_hex"]))
    for cut in range(len(data)):
        with pytest.raises(Asn1DecodeError):
            decode_many([str(case["type"])], data[:cut])


def test_wrong_tag_and_trailing_bytes() -> None:
    """A tag for another type and bytes left over are both decode errors naming the offset."""
    with pytest.raises(Asn1DecodeError, match="tag 0x43 at offset 0, got 0x44"):
        decode_many(["INT"], bytes.fromhex("4412345678"))
    with pytest.raises(Asn1DecodeError, match="trailing"):
        decode_many(["BOOL"], bytes.fromhex("4141"))
    with pytest.raises(Asn1DecodeError, match="BOOL"):
        decode_many(["BOOL"], bytes.fromhex("42"))
    with pytest.raises(Asn1DecodeError, match="offset"):
        decode("INT", b"\x43\x00\x01", offset=9)


def test_invalid_utf16_and_out_of_range_time() -> None:
    """A lone surrogate in a WSTRING and a TIME beyond 64-bit nanoseconds are rejected."""
    with pytest.raises(Asn1DecodeError, match="UTF-16"):
        decode("WSTRING", bytes.fromhex("550001d800"))
    with pytest.raises(Asn1DecodeError, match="TIME"):
        decode("TIME", bytes.fromhex("4c7fffffffffffffff"))


def test_wstring_bom_is_honoured_on_decode() -> None:
    """A WSTRING with a BOM decodes in the byte order it names, as FORTE's fromUTF16 does."""
    assert decode("WSTRING", bytes.fromhex("550002feff0041"))[0] == "A"
    assert decode("WSTRING", bytes.fromhex("550002fffe4100"))[0] == "A"


def test_string_bytes_that_are_not_utf8_survive() -> None:
    """FORTE copies STRING bytes verbatim; non-UTF-8 bytes still decode (as Latin-1)."""
    assert decode("STRING", bytes.fromhex("500002e9ff"))[0] == "éÿ"


@pytest.mark.parametrize(("t", "value"), [
    ("SINT", 128), ("USINT", -1), ("INT", "7"), ("DINT", 1.5), ("BOOL", 2), ("REAL", 1e39),
    ("STRING", b"x"), ("STRING", "x" * 70_000), ("WCHAR", "\U0001f600"), ("CHAR", "ab"),
    ("TIME", 1 << 63), ("DATE", "2024"), (Arr("INT"), 5), (Struct([Member("a", "INT")]), {}),
    ("ANY_INT", 1), ("NOPE", 1),
])
def test_encode_rejects_values_that_do_not_fit(t: FbdkType, value: object) -> None:
    """A value of the wrong kind or out of range is an Asn1EncodeError, never a wrap."""
    with pytest.raises(Asn1EncodeError):
        encode(t, value)


FUZZ_TYPES: list[FbdkType] = [
    *ALL_TYPES,
    Arr("INT"), Arr("BOOL"), Arr("STRING"), Arr("WSTRING", ((0, 1), (0, 1))),
    Struct([Member("a", "BOOL"), Member("b", Arr("LREAL")), Member("c", "WSTRING")]),
    Arr(Struct([Member("x", "TIME"), Member("y", "BOOL")])),
]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(FUZZ_TYPES), max_size=4), st.binary(max_size=64))
def test_random_bytes_only_raise_decode_error(types: list[FbdkType], data: bytes) -> None:
    """Whatever arrives on the wire, decoding returns values or raises Asn1DecodeError."""
    with contextlib.suppress(Asn1DecodeError):
        decode_many(types, data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FUZZ_TYPES), st.binary(max_size=8), st.binary(max_size=48))
def test_random_bytes_after_a_valid_tag_only_raise_decode_error(
        t: FbdkType, noise: bytes, tail: bytes) -> None:
    """Content after a correct tag byte is fuzzed too (random bytes rarely hit a tag)."""
    tag = encode(t, _default_of(t))[:1]
    with contextlib.suppress(Asn1DecodeError):
        decode(t, tag + noise + tail)


def _default_of(t: FbdkType) -> object:
    if isinstance(t, str):
        return elementary(t).default if elementary(t).kind is not Kind.CHAR else "a"
    if isinstance(t, Arr):
        return []
    assert isinstance(t, Struct)
    return {m.name: _default_of(m.type) for m in t.members if isinstance(m, Member)}


# ------------------------------------------------------------------ testbed.types.derived


def test_derived_array_and_struct_types_encode_and_decode() -> None:
    """The runtime's ArrayType/StructType work as descriptors; structs decode to their values."""
    derived = pytest.importorskip("testbed.types.derived")
    point = derived.StructType(
        "POINT", (("X", elementary("INT"), None), ("OK", elementary("BOOL"), None)))
    grid = derived.ArrayType(elementary("SINT"), ((0, 1), (1, 2)))
    holder = derived.StructType("HOLDER", (("P", point, None), ("G", grid, None)))
    value = holder.new()
    value.P.X = -3
    value.P.OK = True
    value.G = [[1, 2], [3, -4]]
    data = encode(holder, value)
    assert data.hex() == "61" "fffd" "41" "0002" "76" "0002" "42" "0102" "0002" "42" "03fc"
    back, end = decode(holder, data)
    assert end == len(data)
    assert back == value
    assert type(back) is holder.value_class
    points = derived.ArrayType(point, ((0, 1),))
    assert decode(points, encode(points, points.new()))[0] == points.new()
