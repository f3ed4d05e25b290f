"""FORTE management wire format: XML requests framed as FBDK ASN.1 STRINGs.

On port 61499 every request is two STRINGs, `0x50 <u16 BE length> <bytes>` each:
the destination (`""` for the device, else a resource name), then the XML request.
Every response is one STRING holding the XML. TCP delivers these in arbitrary
pieces, so `FrameReader` reassembles them incrementally; `read_request` does the
same on an asyncio stream with a deadline once a request has begun.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from testbed.errors import TestbedError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_REQUEST_DEADLINE_S",
    "MAX_FRAME_BYTES",
    "STRING_TAG",
    "FrameError",
    "FrameReader",
    "ManagementRequest",
    "RequestReader",
    "encode_frame",
    "encode_request",
    "read_frame",
    "read_request",
]

STRING_TAG = 0x50
"""ASN.1 APPLICATION class (0x40) + the compliance profile's STRING tag (16)."""
MAX_FRAME_BYTES = 0xFFFF
"""The 2-byte length field's ceiling on a frame's payload."""
DEFAULT_MAX_FRAME_BYTES = MAX_FRAME_BYTES
DEFAULT_REQUEST_DEADLINE_S = 10.0
"""Time a peer has to finish a request once its first byte has arrived."""

_HEADER_BYTES = 3


class FrameError(TestbedError, ValueError):
    """A management stream that breaks the framing: wrong tag, oversize, bad UTF-8, cut short."""


class ManagementRequest(NamedTuple):
    """One management request: where it goes (`""` = the device) and its XML."""

    destination: str
    xml: str


def encode_frame(text: str) -> bytes:
    """One STRING frame carrying `text` as UTF-8 (a response, or half a request)."""
    payload = text.encode("utf-8")
    if len(payload) > MAX_FRAME_BYTES:
        raise FrameError(
            f"frame payload of {len(payload)} bytes exceeds the 2-byte length ({MAX_FRAME_BYTES})")
    return bytes([STRING_TAG]) + len(payload).to_bytes(2, "big") + payload


def encode_request(destination: str, xml: str) -> bytes:
    """A whole request as a client (4diac IDE) sends it: destination frame, then XML frame."""
    return encode_frame(destination) + encode_frame(xml)


def _check_max(max_frame_bytes: int) -> int:
    if not 0 <= max_frame_bytes <= MAX_FRAME_BYTES:
        raise ValueError(f"max_frame_bytes must be within 0..{MAX_FRAME_BYTES}")
    return max_frame_bytes


def _at(offset: int | None) -> str:
    return "" if offset is None else f" at stream offset {offset}"


def _check_header(tag: int, length: int, max_frame_bytes: int, offset: int | None) -> None:
    if tag != STRING_TAG:
        raise FrameError(f"expected STRING tag 0x{STRING_TAG:02x}{_at(offset)}, got 0x{tag:02x}")
    if length > max_frame_bytes:
        raise FrameError(
            f"frame of {length} bytes{_at(offset)} exceeds the limit of {max_frame_bytes} bytes")


def _text(payload: bytes, offset: int | None) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(
            f"frame{_at(offset)} is not UTF-8 ({exc.reason} at byte {exc.start})") from exc


class FrameReader:
    """Incremental STRING-frame parser: feed it bytes as they come, get whole frames back.

    After a FrameError the stream is out of step and cannot be resynchronised; the
    reader stays failed and every later `feed` raises again.
    """

    __slots__ = ("_buffer", "_consumed", "_error", "_max")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._max = _check_max(max_frame_bytes)
        self._buffer = bytearray()
        self._consumed = 0  # stream offset of _buffer[0], for error messages
        self._error: FrameError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buffer)

    @property
    def at_boundary(self) -> bool:
        """True when no partial frame is pending (a clean place for the peer to stop)."""
        return not self._buffer

    def feed(self, data: bytes) -> list[str]:
        """Add received bytes; return every frame they complete, in order."""
        if self._error is not None:
            raise FrameError(f"stream already failed: {self._error}")
        self._buffer += data
        frames: list[str] = []
        try:
            while self._buffer:
                if self._buffer[0] != STRING_TAG:  # fail on the tag before waiting for more
                    _check_header(self._buffer[0], 0, self._max, self._consumed)
                if len(self._buffer) < _HEADER_BYTES:
                    break
                length = int.from_bytes(self._buffer[1:_HEADER_BYTES], "big")
                _check_header(self._buffer[0], length, self._max, self._consumed)
                end = _HEADER_BYTES + length
                if len(self._buffer) < end:
                    break
                frames.append(_text(bytes(self._buffer[_HEADER_BYTES:end]), self._consumed))
                del self._buffer[:end]
                self._consumed += end
        except FrameError as exc:
            self._error = exc
            raise
        return frames


class RequestReader:
    """Pairs frames into requests (destination, XML) for the server side."""

    __slots__ = ("_frames", "_pending")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._frames = FrameReader(max_frame_bytes)
        self._pending: str | None = None

    @property
    def at_boundary(self) -> bool:
        """True when no partial request is pending."""
        return self._pending is None and self._frames.at_boundary

    def feed(self, data: bytes) -> list[ManagementRequest]:
        """Add received bytes; return every request they complete, in order."""
        requests: list[ManagementRequest] = []
        for frame in self._frames.feed(data):
            if self._pending is None:
                self._pending = frame
            else:
                requests.append(ManagementRequest(self._pending, frame))
                self._pending = None
        return requests


async def _read_frame_rest(reader: asyncio.StreamReader, tag: int, max_frame_bytes: int) -> str:
    header = await reader.readexactly(_HEADER_BYTES - 1)
    length = int.from_bytes(header, "big")
    _check_header(tag, length, max_frame_bytes, None)
    return _text(await reader.readexactly(length), None)


async def read_frame(
    reader: asyncio.StreamReader,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    deadline_s: float | None = DEFAULT_REQUEST_DEADLINE_S,
) -> str | None:
    """Read one frame (a response, on the client side); None on EOF before it starts.

    Waiting for the first byte has no deadline (an idle peer is fine; the caller owns
    idle timeouts); the rest of the frame must arrive within `deadline_s`.
    """
    _check_max(max_frame_bytes)
    first = await reader.read(1)
    if not first:
        return None
    try:
        async with asyncio.timeout(deadline_s):
            return await _read_frame_rest(reader, first[0], max_frame_bytes)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"connection closed inside a frame ({len(exc.partial)} bytes read)") \
            from exc
    except TimeoutError as exc:
        raise FrameError(f"frame not completed within {deadline_s} s") from exc


async def read_request(
    reader: asyncio.StreamReader,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    deadline_s: float | None = DEFAULT_REQUEST_DEADLINE_S,
) -> ManagementRequest | None:
    """Read one request (destination frame, XML frame); None on a clean EOF before it.

    The first byte may take as long as it likes; from then on both frames must
    arrive within `deadline_s`, or FrameError is raised. EOF inside a request,
    a wrong tag or an oversize frame are FrameErrors too; socket errors (OSError,
    e.g. a reset) propagate unchanged for the connection owner to handle.
    """
    _check_max(max_frame_bytes)
    first = await reader.read(1)
    if not first:
        return None
    try:
        async with asyncio.timeout(deadline_s):
            destination = await _read_frame_rest(reader, first[0], max_frame_bytes)
            tag = (await reader.readexactly(1))[0]
            xml = await _read_frame_rest(reader, tag, max_frame_bytes)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(
            f"connection closed inside a request ({len(exc.partial)} bytes of the last read)"
        ) from exc
    except TimeoutError as exc:
        raise FrameError(f"request not completed within {deadline_s} s") from exc
    return ManagementRequest(destination, xml)
