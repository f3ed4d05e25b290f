"""FORTE management framing: STRING frames, incremental reassembly, asyncio reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.fourdiac.fbdk_asn1 import decode
from testbed.fourdiac.mgmt_frames import (
    MAX_FRAME_BYTES,
    FrameError,
    FrameReader,
    ManagementRequest,
    RequestReader,
    encode_frame,
    encode_request,
    read_frame,
    read_request,
)

CREATE = '<Request ID="1" Action="CREATE"><FB Name="R" Type="EMB_RES" /></Request>'


def test_frame_is_fbdk_string() -> None:
    """A frame is exactly the FBDK ASN.1 STRING of the text (tag 0x50, u16 BE length)."""
    frame = encode_frame(CREATE)
    assert frame[:3] == b"\x50" + len(CREATE).to_bytes(2, "big")
    assert decode("STRING", frame) == (CREATE, len(frame))


def test_request_is_destination_then_xml() -> None:
    """A request is the destination frame (empty for the device) followed by the XML frame."""
    data = encode_request("", CREATE)
    assert data[:3] == b"\x50\x00\x00"
    assert RequestReader().feed(data) == [ManagementRequest("", CREATE)]


def test_oversize_text_cannot_be_framed() -> None:
    """Text longer than the 2-byte length can carry is refused at encoding."""
    encode_frame("x" * MAX_FRAME_BYTES)
    with pytest.raises(FrameError, match="exceeds"):
        encode_frame("x" * (MAX_FRAME_BYTES + 1))


def test_reader_handles_partial_and_coalesced_reads() -> None:
    """Frames split across reads wait for their rest; several in one read all come out."""
    reader = FrameReader()
    data = encode_frame("R1") + encode_frame(CREATE) + encode_frame("")
    assert reader.feed(data[:1]) == []
    assert reader.feed(data[1:2]) == []
    assert reader.feed(data[2:6]) == ["R1"]
    assert not reader.at_boundary
    assert reader.feed(data[6:]) == [CREATE, ""]
    assert reader.at_boundary
    assert reader.buffered_bytes == 0


def test_wrong_tag_fails_at_once_and_stays_failed() -> None:
    """A non-STRING tag is a FrameError naming the offset, and the reader stays failed."""
    reader = FrameReader()
    assert reader.feed(encode_frame("ok")) == ["ok"]
    with pytest.raises(FrameError, match="offset 5, got 0x41"):
        reader.feed(b"\x41")
    with pytest.raises(FrameError, match="already failed"):
        reader.feed(encode_frame("again"))


def test_oversize_frame_fails_on_its_header() -> None:
    """A frame over the configured maximum fails as soon as its length is known."""
    reader = FrameReader(max_frame_bytes=16)
    assert reader.feed(encode_frame("x" * 16)) == ["x" * 16]
    with pytest.raises(FrameError, match="17 bytes at stream offset 19 exceeds the limit of 16"):
        reader.feed(b"\x50\x00\x11")


def test_invalid_utf8_is_a_frame_error() -> None:
    """A payload that is not UTF-8 is reported, not passed on garbled."""
    with pytest.raises(FrameError, match="not UTF-8"):
        FrameReader().feed(b"\x50\x00\x02\xc3\x28")


def test_max_frame_bytes_is_validated() -> None:
    """A limit the length field cannot express is a configuration mistake."""
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameReader(max_frame_bytes=MAX_FRAME_BYTES + 1)


requests_strategy = st.lists(
    st.builds(ManagementRequest, st.text(max_size=20), st.text(max_size=200)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(requests_strategy, st.data())
def test_any_split_of_a_valid_stream_gives_the_same_requests(
        requests: list[ManagementRequest], data: st.DataObject) -> None:
    """However TCP cuts or merges the bytes, the same requests come out in order."""
    stream = b"".join(encode_request(r.destination, r.xml) for r in requests)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    reader = RequestReader()
    out: list[ManagementRequest] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += reader.feed(stream[start:cut])
        start = cut
    assert out == requests
    assert reader.at_boundary


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=5), st.integers(0, 64))
def test_random_bytes_only_raise_frame_error(chunks: list[bytes], limit: int) -> None:
    """Whatever a peer sends, the reader yields frames or raises FrameError, nothing else."""
    reader = RequestReader(max_frame_bytes=limit)
    with contextlib.suppress(FrameError):
        for chunk in chunks:
            reader.feed(chunk)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=3), st.binary(max_size=60))
def test_random_payload_after_string_tag_only_raises_frame_error(head: bytes, tail: bytes) -> None:
    """Random lengths and payloads behind a correct tag also fail only with FrameError."""
    with contextlib.suppress(FrameError):
        FrameReader().feed(b"\x50" + head + tail)


# ----------------------------------------------------------------------------- asyncio


@contextlib.asynccontextmanager
async def loopback() -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A real TCP connection on loopback: yields the server-side reader and client writer."""
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue(maxsize=1)
    server_writers: list[asyncio.StreamWriter] = []

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        server_writers.append(w)
        await accepted.put(r)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, client = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            server_reader = await accepted.get()
        yield server_reader, client
    finally:
        client.close()
        for w in server_writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_read_request_over_tcp_with_split_writes() -> None:
    """Requests written byte by byte and back to back are read whole, then None at EOF."""
    async with loopback() as (reader, client):
        data = encode_request("", CREATE) + encode_request("RES0", "<Request ID=\"2\"/>")
        for i in range(0, 20):
            client.write(data[i:i + 1])
            await client.drain()
        client.write(data[20:])
        client.write_eof()
        assert await read_request(reader) == ManagementRequest("", CREATE)
        assert await read_request(reader) == ("RES0", '<Request ID="2"/>')
        assert await read_request(reader) is None


async def test_read_request_eof_inside_request_is_frame_error() -> None:
    """A peer that hangs up between the destination and the XML leaves a FrameError."""
    async with loopback() as (reader, client):
        client.write(encode_frame("RES0") + b"\x50\x00")
        client.write_eof()
        with pytest.raises(FrameError, match="closed inside a request"):
            await read_request(reader)


async def test_read_request_deadline_applies_once_started() -> None:
    """A request begun but never finished fails within its deadline with a FrameError."""
    async with loopback() as (reader, client):
        client.write(encode_frame(""))
        await client.drain()
        with pytest.raises(FrameError, match=r"not completed within 0\.2 s"):
            await read_request(reader, deadline_s=0.2)


async def test_read_request_rejects_bad_tag_and_oversize() -> None:
    """The stream variant applies the same tag and size rules as FrameReader."""
    async with loopback() as (reader, client):
        client.write(b"\x51\x00\x00")
        await client.drain()
        with pytest.raises(FrameError, match="got 0x51"):
            await read_request(reader)
    async with loopback() as (reader, client):
        client.write(encode_request("", "x" * 100))
        await client.drain()
        with pytest.raises(FrameError, match="100 bytes exceeds the limit of 99"):
            await read_request(reader, max_frame_bytes=99)


async def test_read_frame_reads_responses() -> None:
    """The client side reads single-frame responses and sees None at EOF."""
    async with loopback() as (reader, client):
        client.write(encode_frame('<Response ID="1"/>') + encode_frame(""))
        client.write_eof()
        assert await read_frame(reader) == '<Response ID="1"/>'
        assert await read_frame(reader) == ""
        assert await read_frame(reader) is None


async def test_read_request_waits_for_an_idle_peer_without_deadline() -> None:
    """Before a request starts there is no deadline: a slow but well-formed peer is served."""
    async with loopback() as (reader, client):
        task_result: list[ManagementRequest | None] = []

        async def serve() -> None:
            task_result.append(await read_request(reader, deadline_s=0.5))

        async with asyncio.TaskGroup() as tg:
            tg.create_task(serve())
            await asyncio.sleep(0.7)  # idle longer than the request deadline
            client.write(encode_request("", CREATE))
            await client.drain()
        assert task_result == [ManagementRequest("", CREATE)]
