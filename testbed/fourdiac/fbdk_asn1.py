"""FBDK ASN.1 codec: how FORTE's `fbdk[]` layer puts IEC values on the wire.

The IEC 61499 compliance profile for feasibility demonstrations encodes each value
as one tag byte (APPLICATION class 0x40, plus 0x20 for constructed types, plus the
type's tag number) followed by big-endian content. Several values (a PUBLISH_n's
SDs) are simply concatenated. We follow FORTE's `fbdkasn1layer.cpp` (3.x):

- BOOL carries its value in the tag: 0x41 TRUE, 0x40 FALSE, no content.
- Integers, bit strings, REAL/LREAL: fixed width, two's complement / IEEE 754.
- TIME and LTIME: 8 bytes of signed microseconds (our values are nanoseconds; the
  encoder truncates toward zero as FORTE's `getInMicroSeconds` does).
- DATE, TIME_OF_DAY, DATE_AND_TIME and their L- twins: 8 bytes of nanoseconds.
- STRING: 2-byte byte count, then the bytes (UTF-8; FORTE copies them verbatim).
- WSTRING: 2-byte count of UTF-16 code units, then UTF-16BE, no BOM. The decoder
  accepts a leading BOM (and little endian after 0xFFFE) as FORTE's does.
- CHAR: one byte (Latin-1); WCHAR: one UTF-16 code unit.
- ARRAY (0x76): 2-byte element count; for BOOL elements every element is a full
  tagged BOOL, otherwise one element tag byte then the untagged element contents.
  An empty array is the count alone (FORTE's decoder reads no element tag then).
- STRUCT (tag from the type, FORTE 3.x default 0x61): the members in order,
  untagged, except BOOL members which are full tagged BOOLs.

FORTE's encoder refuses CHAR, WCHAR, LTIME and the L- date types (its send
fails); its decoder reads them as above, so ours encodes exactly that form.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from testbed.errors import TestbedError
from testbed.types.elementary import ElementaryType, GenericType, Kind, elementary

__all__ = [
    "APPLICATION",
    "ARRAY_TAG",
    "CONSTRUCTED",
    "DEFAULT_STRUCT_TAG",
    "ELEMENTARY_TAGS",
    "NULL_TAG",
    "ArrayDescriptor",
    "Asn1DecodeError",
    "Asn1EncodeError",
    "FbdkType",
    "StructDescriptor",
    "decode",
    "decode_many",
    "encode",
    "encode_many",
]


class Asn1EncodeError(TestbedError, ValueError):
    """A value that the FBDK ASN.1 encoding cannot carry (wrong kind, out of range, too long)."""


class Asn1DecodeError(TestbedError, ValueError):
    """Bytes that are not a valid FBDK ASN.1 encoding of the expected types."""


APPLICATION = 0x40
CONSTRUCTED = 0x20
NULL_TAG = 0x05
"""What FORTE sends for a PUBLISH_0 (no SDs)."""
ARRAY_TAG = APPLICATION | CONSTRUCTED | 22
DEFAULT_STRUCT_TAG = APPLICATION | CONSTRUCTED | 1
"""`CIEC_STRUCT::getASN1StructType()` in FORTE 3.x; a struct type may name its own."""

_TAG_NUMBERS: dict[str, int] = {
    "BOOL": 1, "SINT": 2, "INT": 3, "DINT": 4, "LINT": 5,
    "USINT": 6, "UINT": 7, "UDINT": 8, "ULINT": 9,
    "REAL": 10, "LREAL": 11, "TIME": 12, "DATE": 13, "TIME_OF_DAY": 14,
    "DATE_AND_TIME": 15, "STRING": 16, "BYTE": 17, "WORD": 18, "DWORD": 19,
    "LWORD": 20, "WSTRING": 21, "CHAR": 23, "WCHAR": 24, "LDATE": 25,
    "LTIME_OF_DAY": 26, "LDATE_AND_TIME": 27, "LTIME": 28,
}

ELEMENTARY_TAGS: dict[str, int] = {name: APPLICATION | n for name, n in _TAG_NUMBERS.items()}
"""Tag byte of each elementary type by canonical name (BOOL's is the TRUE form)."""

_BOOL_TRUE = ELEMENTARY_TAGS["BOOL"]
_BOOL_FALSE = APPLICATION
_MAX_COUNT = 0xFFFF
_NS_PER_US = 1000
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


@runtime_checkable
class ArrayDescriptor(Protocol):
    """Anything that describes an ARRAY: its element type and its dimensions.

    Only `len(dims)` is used: an n-dimensional array travels as nested arrays, as
    FORTE 3.x builds them, and its Python value is a nested list. Decoding returns as
    many elements as the wire carries; fitting them to the declared bounds (FORTE
    drops surplus ones) is the receiver's business.
    """

    @property
    def element(self) -> object: ...

    @property
    def dims(self) -> Sequence[object]: ...


@runtime_checkable
class StructDescriptor(Protocol):
    """Anything that describes a STRUCT: its members in declaration order.

    `members` is a mapping name -> type, or a sequence of `(name, type[, ...])` tuples
    or of objects with `name` and `type` attributes. An optional `asn1_tag` attribute
    overrides the tag byte. Values to encode are mappings or objects with the members
    as attributes; decoded values come from the descriptor's `value_class(**members)`
    when it has one (testbed.types.derived.StructType does), else they are dicts.
    """

    @property
    def members(self) -> object: ...


FbdkType = ElementaryType | ArrayDescriptor | StructDescriptor | str
"""What the codec accepts as a type: an elementary type or its name, or a descriptor."""


@dataclass(frozen=True, slots=True)
class _Array:
    element: _Resolved


@dataclass(frozen=True, slots=True)
class _Struct:
    name: str
    members: tuple[tuple[str, _Resolved], ...]
    tag: int
    factory: Callable[..., object] | None  # builds the decoded value from members


_Resolved = ElementaryType | _Array | _Struct


def _resolve(t: object) -> _Resolved:
    if isinstance(t, ElementaryType):
        return t
    if isinstance(t, GenericType):
        raise Asn1EncodeError(f"generic type {t.name} has no wire form; give a concrete type")
    if isinstance(t, str):
        try:
            return elementary(t)
        except KeyError:
            raise Asn1EncodeError(f"unknown elementary type {t!r}") from None
    if isinstance(t, ArrayDescriptor):
        try:
            depth = max(len(t.dims), 1)
        except TypeError:
            raise Asn1EncodeError(f"ARRAY dims must be a sequence: {t.dims!r}") from None
        inner: _Resolved = _resolve(t.element)
        for _ in range(depth):
            inner = _Array(inner)
        return inner
    if isinstance(t, StructDescriptor):
        tag = getattr(t, "asn1_tag", DEFAULT_STRUCT_TAG)
        if not isinstance(tag, int) or not 0 <= tag <= 0xFF:
            raise Asn1EncodeError(f"struct asn1_tag must be a byte, got {tag!r}")
        name = str(getattr(t, "name", "STRUCT"))
        factory = getattr(t, "value_class", None)
        members = tuple((n, _resolve(mt)) for n, mt in _member_pairs(t.members))
        return _Struct(name, members, tag, factory if callable(factory) else None)
    raise Asn1EncodeError(f"not a type the FBDK ASN.1 codec knows: {t!r}")


def _member_pairs(members: object) -> Iterable[tuple[str, object]]:
    if isinstance(members, Mapping):
        return [(str(k), v) for k, v in members.items()]
    if not isinstance(members, Iterable):
        raise Asn1EncodeError(f"struct members must be a mapping or a sequence: {members!r}")
    pairs: list[tuple[str, object]] = []
    for m in members:
        if isinstance(m, tuple) and len(m) >= 2:  # (name, type) or (name, type, initial)
            pairs.append((str(m[0]), m[1]))
        elif hasattr(m, "name") and hasattr(m, "type"):
            pairs.append((str(getattr(m, "name")), getattr(m, "type")))  # noqa: B009 (duck-typed member)
        else:
            raise Asn1EncodeError(f"struct member must be (name, type) or have name/type: {m!r}")
    return pairs


def _tag_of(t: _Resolved) -> int:
    if isinstance(t, ElementaryType):
        return ELEMENTARY_TAGS[t.name]
    if isinstance(t, _Array):
        return ARRAY_TAG
    return t.tag


def _is_bool(t: _Resolved) -> bool:
    return isinstance(t, ElementaryType) and t.kind is Kind.BOOL


# ----------------------------------------------------------------------------- encoding


def encode(t: FbdkType, value: object) -> bytes:
    """One value as a tagged FBDK ASN.1 data point."""
    out = bytearray()
    _encode_point(_resolve(t), value, out)
    return bytes(out)


def encode_many(points: Iterable[tuple[FbdkType, object]]) -> bytes:
    """Several values concatenated, as a PUBLISH_n sends its SDs (no SDs: the NULL tag)."""
    out = bytearray()
    count = 0
    for t, value in points:
        _encode_point(_resolve(t), value, out)
        count += 1
    return bytes(out) if count else bytes([NULL_TAG])


def _encode_point(t: _Resolved, value: object, out: bytearray) -> None:
    if _is_bool(t):
        out.append(_BOOL_TRUE if _as_bool(value) else _BOOL_FALSE)
        return
    out.append(_tag_of(t))
    _encode_content(t, value, out)


def _encode_content(t: _Resolved, value: object, out: bytearray) -> None:
    if isinstance(t, _Array):
        _encode_array(t, value, out)
    elif isinstance(t, _Struct):
        _encode_struct(t, value, out)
    else:
        _encode_elementary(t, value, out)


def _encode_array(t: _Array, value: object, out: bytearray) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise Asn1EncodeError(f"ARRAY value must be a list, got {type(value).__name__}")
    if len(value) > _MAX_COUNT:
        raise Asn1EncodeError(f"ARRAY of {len(value)} elements exceeds {_MAX_COUNT}")
    out += len(value).to_bytes(2, "big")
    if not value:
        return
    if _is_bool(t.element):
        for item in value:
            _encode_point(t.element, item, out)
        return
    out.append(_tag_of(t.element))
    for item in value:
        _encode_content(t.element, item, out)


def _member_value(t: _Struct, value: object, name: str) -> object:
    if isinstance(value, Mapping):
        if name in value:
            return value[name]
    elif hasattr(value, name):
        return getattr(value, name)
    raise Asn1EncodeError(
        f"STRUCT {t.name} value ({type(value).__name__}) lacks member {name!r}")


def _encode_struct(t: _Struct, value: object, out: bytearray) -> None:
    for name, mt in t.members:
        member = _member_value(t, value, name)
        if _is_bool(mt):
            _encode_point(mt, member, out)
        else:
            _encode_content(mt, member, out)


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Asn1EncodeError(f"BOOL value must be bool, got {value!r}")


def _as_int(t: ElementaryType, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Asn1EncodeError(f"{t.name} value must be int, got {value!r}")
    return value


def _encode_elementary(t: ElementaryType, value: object, out: bytearray) -> None:
    kind = t.kind
    if kind in (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS):
        v = _as_int(t, value)
        if not t.in_range(v):
            raise Asn1EncodeError(f"{v} is out of range for {t.name} [{t.min}..{t.max}]")
        out += v.to_bytes(t.bits // 8, "big", signed=kind is Kind.SIGNED)
    elif kind is Kind.REAL:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Asn1EncodeError(f"{t.name} value must be float, got {value!r}")
        f = float(value)
        if t.bits == 32:
            if math.isfinite(f) and abs(f) > 3.4028234663852886e38:
                raise Asn1EncodeError(f"{f} is out of range for REAL")
            out += _F32.pack(f)
        else:
            out += _F64.pack(f)
    elif kind is Kind.DURATION:
        ns = _as_int(t, value)
        if not _INT64_MIN <= ns <= _INT64_MAX:
            raise Asn1EncodeError(f"{ns} ns is out of range for {t.name}")
        us = abs(ns) // _NS_PER_US * (1 if ns >= 0 else -1)
        out += us.to_bytes(8, "big", signed=True)
    elif kind in (Kind.DATE, Kind.TIME_OF_DAY, Kind.DATE_AND_TIME):
        ns = _as_int(t, value)
        if not _INT64_MIN <= ns <= _INT64_MAX:
            raise Asn1EncodeError(f"{ns} ns is out of range for {t.name}")
        out += ns.to_bytes(8, "big", signed=True)
    elif kind is Kind.STRING:
        _encode_text(t, value, out)
    elif kind is Kind.CHAR:
        _encode_char(t, value, out)
    else:  # BOOL never reaches here: its value lives in the tag
        raise Asn1EncodeError(f"{t.name} cannot be encoded as content")


def _encode_text(t: ElementaryType, value: object, out: bytearray) -> None:
    if not isinstance(value, str):
        raise Asn1EncodeError(f"{t.name} value must be str, got {value!r}")
    try:
        if t.name == "STRING":
            data = value.encode("utf-8")
            count = len(data)
        else:
            data = value.encode("utf-16-be")
            count = len(data) // 2
    except UnicodeEncodeError as exc:
        raise Asn1EncodeError(f"{t.name} value is not encodable: {exc}") from exc
    if count > _MAX_COUNT:
        raise Asn1EncodeError(f"{t.name} of {count} units exceeds the 2-byte length ({_MAX_COUNT})")
    out += count.to_bytes(2, "big")
    out += data


def _encode_char(t: ElementaryType, value: object, out: bytearray) -> None:
    if not isinstance(value, str) or len(value) != 1:
        raise Asn1EncodeError(f"{t.name} value must be a one-character str, got {value!r}")
    code = ord(value)
    if t.bits == 8:
        if code > 0xFF:
            raise Asn1EncodeError(f"CHAR value {value!r} is not a single byte")
        out.append(code)
    else:
        if code > 0xFFFF or 0xD800 <= code <= 0xDFFF:
            raise Asn1EncodeError(f"WCHAR value {value!r} is not one UTF-16 code unit")
        out += code.to_bytes(2, "big")


# ----------------------------------------------------------------------------- decoding


class _Reader:
    """A cursor over the input that raises Asn1DecodeError instead of running off the end."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise Asn1DecodeError(
                f"truncated {what}: needs {n} bytes at offset {self.pos}, "
                f"{len(self.data) - self.pos} left")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def count(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")


def decode(t: FbdkType, data: bytes, offset: int = 0) -> tuple[object, int]:
    """Decode one tagged value of type `t` at `offset`; returns it and the offset after it."""
    if not 0 <= offset <= len(data):
        raise Asn1DecodeError(f"offset {offset} is outside the {len(data)}-byte input")
    resolved = _resolve_for_decode(t)
    reader = _Reader(bytes(data), offset)
    value = _decode_point(resolved, reader)
    return value, reader.pos


def decode_many(types: Sequence[FbdkType], data: bytes) -> list[object]:
    """Decode a whole message holding exactly these values (a SUBSCRIBE_n's RDs)."""
    resolved = [_resolve_for_decode(t) for t in types]
    raw = bytes(data)
    if not resolved:
        if raw != bytes([NULL_TAG]):
            raise Asn1DecodeError(f"expected the NULL tag alone for no values, got {raw.hex()}")
        return []
    reader = _Reader(raw, 0)
    values = [_decode_point(rt, reader) for rt in resolved]
    if reader.pos != len(raw):
        raise Asn1DecodeError(
            f"{len(raw) - reader.pos} trailing bytes after {len(resolved)} values "
            f"at offset {reader.pos}")
    return values


def _resolve_for_decode(t: object) -> _Resolved:
    try:
        return _resolve(t)
    except Asn1EncodeError as exc:  # a bad type is the caller's fault either way
        raise Asn1DecodeError(str(exc)) from exc


def _decode_point(t: _Resolved, r: _Reader) -> object:
    at = r.pos
    tag = r.byte(f"{_type_name(t)} tag")
    if _is_bool(t):
        if tag == _BOOL_TRUE:
            return True
        if tag == _BOOL_FALSE:
            return False
        raise Asn1DecodeError(f"expected a BOOL tag (0x40/0x41) at offset {at}, got 0x{tag:02x}")
    expected = _tag_of(t)
    if tag != expected:
        raise Asn1DecodeError(
            f"expected {_type_name(t)} tag 0x{expected:02x} at offset {at}, got 0x{tag:02x}")
    return _decode_content(t, r)


def _type_name(t: _Resolved) -> str:
    if isinstance(t, ElementaryType):
        return t.name
    if isinstance(t, _Array):
        return "ARRAY"
    return t.name


def _decode_content(t: _Resolved, r: _Reader) -> object:
    if isinstance(t, _Array):
        return _decode_array(t, r)
    if isinstance(t, _Struct):
        return _decode_struct(t, r)
    return _decode_elementary(t, r)


def _decode_array(t: _Array, r: _Reader) -> list[object]:
    n = r.count("ARRAY element count")
    if n == 0:
        return []
    if _is_bool(t.element):
        return [_decode_point(t.element, r) for _ in range(n)]
    at = r.pos
    tag = r.byte("ARRAY element tag")
    expected = _tag_of(t.element)
    if tag != expected:
        raise Asn1DecodeError(
            f"expected ARRAY element tag 0x{expected:02x} ({_type_name(t.element)}) "
            f"at offset {at}, got 0x{tag:02x}")
    return [_decode_content(t.element, r) for _ in range(n)]


def _decode_struct(t: _Struct, r: _Reader) -> object:
    out: dict[str, object] = {}
    for name, mt in t.members:
        out[name] = _decode_point(mt, r) if _is_bool(mt) else _decode_content(mt, r)
    return t.factory(**out) if t.factory is not None else out


def _decode_elementary(t: ElementaryType, r: _Reader) -> object:
    kind = t.kind
    if kind in (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS):
        return int.from_bytes(r.take(t.bits // 8, t.name), "big", signed=kind is Kind.SIGNED)
    if kind is Kind.REAL:
        if t.bits == 32:
            return float(_F32.unpack(r.take(4, t.name))[0])
        return float(_F64.unpack(r.take(8, t.name))[0])
    if kind is Kind.DURATION:
        us = int.from_bytes(r.take(8, t.name), "big", signed=True)
        ns = us * _NS_PER_US
        if not _INT64_MIN <= ns <= _INT64_MAX:
            raise Asn1DecodeError(f"{t.name} of {us} us does not fit 64-bit nanoseconds")
        return ns
    if kind in (Kind.DATE, Kind.TIME_OF_DAY, Kind.DATE_AND_TIME):
        return int.from_bytes(r.take(8, t.name), "big", signed=True)
    if kind is Kind.STRING:
        return _decode_text(t, r)
    if kind is Kind.CHAR:
        if t.bits == 8:
            return chr(r.byte(t.name))
        code = int.from_bytes(r.take(2, t.name), "big")
        if 0xD800 <= code <= 0xDFFF:
            raise Asn1DecodeError(f"WCHAR 0x{code:04x} is a lone UTF-16 surrogate")
        return chr(code)
    raise Asn1DecodeError(f"{t.name} has no content to decode")


def _decode_text(t: ElementaryType, r: _Reader) -> str:
    n = r.count(f"{t.name} length")
    if t.name == "STRING":
        raw = r.take(n, t.name)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")  # FORTE sends bytes verbatim; keep every byte
    raw = r.take(2 * n, t.name)
    codec = "utf-16-be"
    if raw[:2] == b"\xfe\xff":
        raw = raw[2:]
    elif raw[:2] == b"\xff\xfe":
        raw, codec = raw[2:], "utf-16-le"
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise Asn1DecodeError(f"WSTRING is not valid UTF-16: {exc.reason}") from exc
