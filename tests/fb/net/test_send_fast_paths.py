"""The per-message fast paths (one-value struct layout, cached SD types) change no bytes."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from net_testkit import comm_fb, new_resource, running_device

from fb.net.codec import FbdkCodec, PayloadError
from fb.net.layers.base import ComStatus, DataPoints, outcome
from testbed.fourdiac.fbdk_asn1 import encode_many
from testbed.types import ELEMENTARY

DINT, INT, LREAL, UINT = (ELEMENTARY[n] for n in ("DINT", "INT", "LREAL", "UINT"))


@given(st.integers(-(1 << 31), (1 << 31) - 1), st.floats(allow_nan=False))
def test_one_value_layouts_equal_the_general_encoder(d: int, f: float) -> None:
    """A single DINT or LREAL encodes to the general encoder's bytes and decodes back."""
    for t, v in ((DINT, d), (LREAL, f)):
        codec = FbdkCodec((t,))
        data = codec.encode(DataPoints((t,), (v,)))
        assert data == encode_many([(t, v)])
        assert codec.decode(data) == (v,)


def test_one_value_decode_rejects_another_tag_and_length() -> None:
    """A single-RD codec reports a foreign tag as DATA_TYPE_ERROR and a cut message as
    RECV_FAILED, as the general decoder does."""
    codec = FbdkCodec((DINT,))
    with pytest.raises(PayloadError) as err:
        codec.decode(encode_many([(UINT, 7)]) + b"\x00\x00")  # 5 bytes, UINT's tag
    assert err.value.result.status is ComStatus.DATA_TYPE_ERROR
    with pytest.raises(PayloadError) as err:
        codec.decode(encode_many([(DINT, 7)])[:-1])
    assert err.value.result.status is ComStatus.RECV_FAILED


@pytest.mark.parametrize(("t", "value"), [(DINT, True), (INT, 70_000)])
def test_one_value_encode_leaves_odd_values_to_the_general_encoder(
        t: object, value: object) -> None:
    """A bool for a DINT or an INT out of range: the general encoder decides
    (DATA_TYPE_ERROR); the struct never packs them."""
    codec = FbdkCodec(())
    with pytest.raises(PayloadError) as err:
        codec.encode(DataPoints((t,), (value,)))  # type: ignore[arg-type]
    assert err.value.result.status is ComStatus.DATA_TYPE_ERROR


def test_an_int_for_a_real_goes_the_general_way() -> None:
    """An int for an LREAL is not packed as a struct double but encoded as the general
    encoder does it."""
    assert FbdkCodec(()).encode(DataPoints((LREAL,), (3,))) == encode_many([(LREAL, 3)])


def test_codec_follows_a_change_of_sd_types() -> None:
    """The codec's last-layout shortcut never reuses a layout for other types."""
    codec = FbdkCodec(())
    first = (DINT,)
    assert codec.encode(DataPoints(first, (5,))) == encode_many([(DINT, 5)])
    assert codec.encode(DataPoints((INT,), (5,))) == encode_many([(INT, 5)])
    assert codec.encode(DataPoints(first, (6,))) == encode_many([(DINT, 6)])
    assert codec.encode(DataPoints((DINT, LREAL), (1, 2.5))) == encode_many(
        [(DINT, 1), (LREAL, 2.5)])


def test_layer_outcome_text_and_ok() -> None:
    """LayerOutcome's precomputed ok/text follow its status; equality ignores them."""
    good = outcome(ComStatus.OK)
    assert good.ok
    assert good.text == "OK"
    bad = outcome(ComStatus.SEND_FAILED, "x")
    assert not bad.ok
    assert bad.text == "SEND_FAILED"
    assert bad == outcome(ComStatus.SEND_FAILED, "x")


async def test_publish_sends_the_new_type_after_a_parameter_changes_it() -> None:
    """PUBLISH_1 whose SD_1 is rewritten with another type puts the new tag on the wire."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with running_device() as dev:
            res, rec = new_resource(dev)
            comm_fb(res, "PUB", "PUBLISH_1", f"127.0.0.1:{sink.getsockname()[1]}")
            res.write_parameter("PUB.SD_1", "DINT#5")
            res.start()
            res.inject("PUB.INIT")
            await rec.wait("PUB", "INITO")
            received: list[bytes] = []
            for literal, count in (("DINT#5", 1), ("INT#6", 2), ("DINT#7", 3)):
                res.write_parameter("PUB.SD_1", literal)
                res.inject("PUB.REQ")
                await rec.wait("PUB", "CNF", count=count)
                async with asyncio.timeout(2):
                    received.append(await loop.sock_recv(sink, 64))
    finally:
        sink.close()
    assert received == [encode_many([(DINT, 5)]), encode_many([(INT, 6)]),
                        encode_many([(DINT, 7)])]
