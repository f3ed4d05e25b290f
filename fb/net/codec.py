"""Payload codecs of the encoding layers: `fbdk[]` (FBDK ASN.1) and `raw[]` (bytes as is).

`FbdkCodec` turns SDs into FORTE's bytes (`testbed.fourdiac.fbdk_asn1`) and bytes
back into RD values. An RD whose type is unknown (its output is not connected) takes
the elementary type its tag names, as a FORTE ANY output would. A tag that does not
fit the RD is `DATA_TYPE_ERROR`; bytes that are cut short or left over are
`RECV_FAILED`. Over TCP, messages are concatenated with no framing (FORTE's
`CFBDKASN1ComLayer::recvData` keeps partial data for the next packet), so
`decode_stream` takes every complete message off the front of a buffer.

`RawCodec` is FORTE's `raw[]`: SD_1 (a STRING) is sent as its bytes; a received
payload becomes RD_1 as text.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from fb.net.layers.base import ComStatus, DataPoints, LayerOutcome, outcome
from testbed.fourdiac.fbdk_asn1 import (
    ARRAY_TAG,
    ELEMENTARY_TAGS,
    NULL_TAG,
    Asn1DecodeError,
    Asn1EncodeError,
    FbdkType,
    decode,
    encode_many,
)
from testbed.types import ELEMENTARY, ElementaryType, Kind

__all__ = ["FbdkCodec", "PayloadCodec", "PayloadError", "RawCodec", "codec_for"]

_TAG_TO_TYPE: dict[int, ElementaryType] = {
    tag: ELEMENTARY[name] for name, tag in ELEMENTARY_TAGS.items() if name in ELEMENTARY}
_TAG_TO_TYPE[ELEMENTARY_TAGS["BOOL"] & ~0x01] = ELEMENTARY["BOOL"]  # FALSE form 0x40


class PayloadError(Exception):
    """A payload that cannot be encoded or decoded; carries the FORTE status to report."""

    def __init__(self, result: LayerOutcome) -> None:
        super().__init__(result.detail)
        self.result = result


class _Incomplete(Exception):
    """The buffer ends inside a message (TCP: wait for more bytes)."""


def _expected_tags(t: FbdkType) -> tuple[int, ...] | None:
    if isinstance(t, ElementaryType):
        tag = ELEMENTARY_TAGS.get(t.name)
        if tag is None:
            return None
        return (tag, tag & ~0x01) if t.kind is Kind.BOOL else (tag,)
    if isinstance(t, str):
        return _expected_tags(ELEMENTARY[t]) if t in ELEMENTARY else None
    if hasattr(t, "dims"):
        return (ARRAY_TAG,)
    return None  # structs carry their own tag; the decoder checks it


_FIXED_FORMATS: dict[tuple[Kind, int], str] = {
    (Kind.SIGNED, 8): "b", (Kind.SIGNED, 16): "h", (Kind.SIGNED, 32): "i",
    (Kind.SIGNED, 64): "q", (Kind.UNSIGNED, 8): "B", (Kind.UNSIGNED, 16): "H",
    (Kind.UNSIGNED, 32): "I", (Kind.UNSIGNED, 64): "Q", (Kind.BITS, 8): "B",
    (Kind.BITS, 16): "H", (Kind.BITS, 32): "I", (Kind.BITS, 64): "Q",
    (Kind.REAL, 32): "f", (Kind.REAL, 64): "d",
}


class _FixedLayout:
    """A message of tagged fixed-width integers/reals as one struct: the common fast path.

    Only a shortcut: anything it does not match exactly (other tags, other lengths,
    out-of-range values) goes through the general codec, which reports the error.
    """

    __slots__ = ("pytypes", "size", "struct", "tag", "tags")

    def __init__(self, types: Sequence[FbdkType | None]) -> None:
        fmt = ">"
        tags: list[int] = []
        pytypes: list[type] = []
        for t in types:
            if not isinstance(t, ElementaryType) or t.name not in ELEMENTARY_TAGS:
                raise LookupError
            code = _FIXED_FORMATS.get((t.kind, t.bits))
            if code is None:
                raise LookupError
            fmt += "B" + code
            tags.append(ELEMENTARY_TAGS[t.name])
            pytypes.append(float if t.kind is Kind.REAL else int)
        self.struct = struct.Struct(fmt)
        self.size = self.struct.size
        self.tags = tuple(tags)
        self.pytypes = tuple(pytypes)
        self.tag = tags[0] if len(tags) == 1 else None  # one value: no flattening

    def encode(self, values: tuple[object, ...]) -> bytes | None:
        if self.tag is not None and len(values) == 1:
            value = values[0]
            if type(value) is not self.pytypes[0]:
                return None
            try:
                return self.struct.pack(self.tag, value)
            except (struct.error, OverflowError):
                return None
        flat: list[object] = []
        for tag, pytype, value in zip(self.tags, self.pytypes, values, strict=True):
            if type(value) is not pytype:
                return None
            flat += (tag, value)
        try:
            return self.struct.pack(*flat)
        except (struct.error, OverflowError):
            return None

    def decode(self, data: bytes) -> tuple[object, ...] | None:
        if len(data) != self.size:
            return None
        if self.tag is not None:
            tag, value = self.struct.unpack(data)
            return (value,) if tag == self.tag else None
        flat = self.struct.unpack(data)
        if flat[0::2] != self.tags:
            return None
        return tuple(flat[1::2])


def _fixed_layout(types: Sequence[FbdkType | None]) -> _FixedLayout | None:
    try:
        return _FixedLayout(types) if types else None
    except LookupError:
        return None


class FbdkCodec:
    """FBDK ASN.1 payloads for a fixed list of RD types."""

    def __init__(self, rd_types: Sequence[FbdkType | None]) -> None:
        self._rd_types = tuple(rd_types)
        self._rd_layout = _fixed_layout(self._rd_types)
        self._sd_layouts: dict[tuple[FbdkType, ...], _FixedLayout | None] = {}
        self._last_types: tuple[FbdkType, ...] | None = None
        self._last_layout: _FixedLayout | None = None

    def encode(self, points: DataPoints) -> bytes:
        types = points.types
        if types is self._last_types:  # a comm FB passes the same tuple while types hold
            layout = self._last_layout
        else:
            try:
                layout = self._sd_layouts[types]
            except KeyError:
                layout = self._sd_layouts[types] = _fixed_layout(types)
            self._last_types, self._last_layout = types, layout
        if isinstance(layout, _FixedLayout):
            fast = layout.encode(points.values)
            if fast is not None:
                return fast
        try:
            return encode_many(zip(points.types, points.values, strict=True))
        except Asn1EncodeError as exc:
            raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR, str(exc))) from exc

    def decode(self, data: bytes) -> tuple[object, ...]:
        """One whole datagram or MQTT message."""
        if not self._rd_types:
            return ()
        if self._rd_layout is not None:
            fast = self._rd_layout.decode(data)
            if fast is not None:
                return fast
        try:
            values, end = self._decode_message(data, 0)
        except _Incomplete:
            raise PayloadError(outcome(
                ComStatus.RECV_FAILED, f"message of {len(data)} bytes is cut short")) from None
        if end != len(data):
            raise PayloadError(outcome(
                ComStatus.RECV_FAILED, f"{len(data) - end} bytes left over after the RDs"))
        return values

    def decode_stream(self, buffer: bytearray) -> list[tuple[object, ...]]:
        """Take every complete message off the front of `buffer` (a TCP stream)."""
        messages: list[tuple[object, ...]] = []
        if not self._rd_types:
            while buffer:  # FORTE: with no RDs every byte (the NULL tag) is one message
                del buffer[:1]
                messages.append(())
            return messages
        pos = 0
        while pos < len(buffer):
            try:
                values, pos_after = self._decode_message(bytes(buffer), pos)
            except _Incomplete:
                break
            messages.append(values)
            pos = pos_after
        del buffer[:pos]
        return messages

    def _decode_message(self, data: bytes, pos: int) -> tuple[tuple[object, ...], int]:
        values: list[object] = []
        for i, t in enumerate(self._rd_types, start=1):
            if pos >= len(data):
                raise _Incomplete
            tag = data[pos]
            if t is None:
                inferred = _TAG_TO_TYPE.get(tag)
                if inferred is None:
                    raise PayloadError(outcome(
                        ComStatus.DATA_TYPE_ERROR,
                        f"RD_{i}: tag 0x{tag:02x} is no elementary type and RD_{i} is untyped"))
                t = inferred
            else:
                expected = _expected_tags(t)
                if expected is not None and tag not in expected:
                    if tag == NULL_TAG:
                        raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR,
                                                   "got an empty (NULL) message"))
                    raise PayloadError(outcome(
                        ComStatus.DATA_TYPE_ERROR,
                        f"RD_{i}: expected tag 0x{expected[0]:02x}, got 0x{tag:02x}"))
            try:
                value, pos = decode(t, data, pos)
            except Asn1DecodeError as exc:
                if str(exc).startswith("truncated"):
                    raise _Incomplete from exc
                raise PayloadError(outcome(ComStatus.RECV_FAILED, f"RD_{i}: {exc}")) from exc
            values.append(value)
        return tuple(values), pos


class RawCodec:
    """FORTE's `raw[]`: the STRING in SD_1 goes out as its bytes; a payload comes back as RD_1."""

    def __init__(self, rd_types: Sequence[FbdkType | None]) -> None:
        self._rd_types = tuple(rd_types)
        for t in self._rd_types:
            if t is not None and not (isinstance(t, ElementaryType) and t.kind is Kind.STRING):
                raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR,
                                           "raw[] RDs must be STRING or WSTRING"))
        if len(self._rd_types) > 1:
            raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR, "raw[] carries one RD at most"))

    def encode(self, points: DataPoints) -> bytes:
        if not points.values:
            return b""
        if len(points.values) > 1:
            raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR, "raw[] sends one SD only"))
        value = points.values[0]
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise PayloadError(outcome(ComStatus.DATA_TYPE_ERROR,
                                       f"raw[] sends STRING, got {type(value).__name__}"))
        return value.encode("utf-8")

    def decode(self, data: bytes) -> tuple[object, ...]:
        if not self._rd_types:
            return ()
        try:
            return (data.decode("utf-8"),)
        except UnicodeDecodeError:
            return (data.decode("latin-1"),)  # keep every byte, as FORTE copies them

    def decode_stream(self, buffer: bytearray) -> list[tuple[object, ...]]:
        if not buffer:
            return []
        data = bytes(buffer)
        buffer.clear()
        return [self.decode(data)]


PayloadCodec = FbdkCodec | RawCodec


def codec_for(layer_name: str, rd_types: Sequence[FbdkType | None]) -> PayloadCodec:
    """The codec for `fbdk` or `raw`; PayloadError if it cannot hold the RDs."""
    if layer_name == "raw":
        return RawCodec(rd_types)
    return FbdkCodec(rd_types)
