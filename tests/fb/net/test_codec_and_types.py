"""fbdk/raw payload codecs, and the comm FB family interfaces against 4diac's typelib/net."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from net_testkit import comm_fb, new_resource, running_device

from fb.net.codec import FbdkCodec, PayloadError, RawCodec
from fb.net.layers import LAYER_FACTORIES, UnknownLayerError, layer_factory
from fb.net.layers.base import ComStatus, DataPoints
from testbed.fourdiac.fbdk_asn1 import encode_many
from testbed.fourdiac.fbt import read_fbt
from testbed.library import TypeLibrary
from testbed.types import ELEMENTARY

DINT, INT, LREAL, REAL, STRING, BOOL = (ELEMENTARY[n] for n in
                                        ("DINT", "INT", "LREAL", "REAL", "STRING", "BOOL"))


@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 15), (1 << 15) - 1),
       st.floats(allow_nan=False))
def test_fast_path_bytes_equal_general_encoder(d: int, i: int, f: float) -> None:
    """The struct fast path produces exactly the general encoder's bytes and decodes them back."""
    types = (DINT, INT, LREAL)
    codec = FbdkCodec(types)
    data = codec.encode(DataPoints(types, (d, i, f)))
    assert data == encode_many(zip(types, (d, i, f), strict=True))
    assert codec.decode(data) == (d, i, f)


def test_out_of_range_value_is_data_type_error() -> None:
    """A value the wire type cannot hold is DATA_TYPE_ERROR, not an exception."""
    codec = FbdkCodec(())
    with pytest.raises(PayloadError) as err:
        codec.encode(DataPoints((INT,), (70_000,)))
    assert err.value.result.status is ComStatus.DATA_TYPE_ERROR
    with pytest.raises(PayloadError) as err:
        codec.encode(DataPoints((REAL,), (1e300,)))
    assert err.value.result.status is ComStatus.DATA_TYPE_ERROR


def test_untyped_rd_takes_the_wire_type() -> None:
    """An RD with no known type decodes whatever elementary value the tag names."""
    codec = FbdkCodec((None, None))
    assert codec.decode(bytes.fromhex("40" "50000268e9")) == (False, "h\u00e9")
    with pytest.raises(PayloadError) as err:
        codec.decode(bytes.fromhex("7600"))
    assert err.value.result.status is ComStatus.DATA_TYPE_ERROR


def test_stream_decoding_keeps_partial_messages() -> None:
    """decode_stream takes whole messages and leaves a partial one for the next chunk."""
    codec = FbdkCodec((BOOL, STRING))
    buffer = bytearray(bytes.fromhex("41500002" "6869" "40500001"))
    assert codec.decode_stream(buffer) == [(True, "hi")]
    assert buffer == bytearray(bytes.fromhex("40500001"))
    buffer += b"x"
    assert codec.decode_stream(buffer) == [(False, "x")]
    assert buffer == bytearray()


def test_no_rd_messages() -> None:
    """PUBLISH_0 sends the NULL tag; a SUBSCRIBE_0 stream counts one message per byte."""
    assert FbdkCodec(()).encode(DataPoints((), ())) == b"\x05"
    assert FbdkCodec(()).decode_stream(bytearray(b"\x05\x05")) == [(), ()]


def test_raw_codec() -> None:
    """raw[] sends a STRING's bytes, reads any payload as text, and refuses non-string RDs."""
    codec = RawCodec((STRING,))
    assert codec.encode(DataPoints((STRING,), ("{\"a\": 1}",))) == b'{"a": 1}'
    assert codec.decode(b"\xff\xfe") == ("\xff\xfe",)
    with pytest.raises(PayloadError):
        RawCodec((DINT,))
    with pytest.raises(PayloadError):
        codec.encode(DataPoints((DINT,), (5,)))


def test_layer_table_lookup() -> None:
    """Layers are found by name; an unknown name or a missing module is UnknownLayerError."""
    assert {"fbdk", "raw", "loc", "opc_ua", "modbus"} <= set(LAYER_FACTORIES)
    assert callable(layer_factory("fbdk"))
    with pytest.raises(UnknownLayerError, match="no communication layer 'tsn'"):
        layer_factory("tsn")


# 4diac's typelib PUBLISH_10.fbt declares only SD_1..SD_9; FORTE builds PUBLISH_10 with
# ten SDs (CCommFB::createInterfaceSpec), and so do we (see test_families_beyond_ten)
@pytest.mark.parametrize("name", ["PUBLISH_0", "PUBLISH_1", "PUBLISH_3",
                                  "SUBSCRIBE_0", "SUBSCRIBE_2", "SUBSCRIBE_10", "CLIENT_1",
                                  "CLIENT_2_1", "SERVER_1", "SERVER_1_2"])
def test_interfaces_match_4diac_typelib(name: str) -> None:
    """Our generated interface has 4diac's events, WITH sets, variable names and types."""
    from shared_material import shared_path

    theirs = read_fbt(shared_path("4diac", "typelib", "net", f"{name}.fbt")).interface
    ours = TypeLibrary.with_native_types().get(name).interface

    def shape(itf: object) -> object:
        return (
            # WITH order carries no meaning (4diac's PUBLISH_10 lists SD_3 before SD_2)
            [(e.name, set(e.with_vars)) for e in itf.event_inputs],  # type: ignore[attr-defined]
            [(e.name, set(e.with_vars)) for e in itf.event_outputs],  # type: ignore[attr-defined]
            [(v.name, v.type.name) for v in itf.input_vars],  # type: ignore[attr-defined]
            [(v.name, v.type.name) for v in itf.output_vars],  # type: ignore[attr-defined]
        )

    assert shape(ours) == shape(theirs)


def test_families_beyond_ten() -> None:
    """PUBLISH_10 has ten SDs as in FORTE; PUBLISH_16 and CLIENT_3_12 exist as named."""
    lib = TypeLibrary.with_native_types()
    assert [v.name for v in lib.get("PUBLISH_10").interface.input_vars][-1] == "SD_10"
    assert [v.name for v in lib.get("PUBLISH_16").interface.input_vars][-1] == "SD_16"
    client = lib.get("CLIENT_3_12").interface
    assert [v.name for v in client.input_vars][-1] == "SD_3"
    assert [v.name for v in client.output_vars][-1] == "RD_12"


async def test_publish_0_to_subscribe_0() -> None:
    """PUBLISH_0 -> SUBSCRIBE_0 fires IND with QO=TRUE (an event without data)."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_0", "127.0.0.1:0")
        res.start()
        res.inject("SUB.INIT")
        await rec.wait("SUB", "INITO")
        port = res.fb("SUB").layer.local_address[1]  # type: ignore[attr-defined]
        comm_fb(res, "PUB", "PUBLISH_0", f"127.0.0.1:{port}")
        res.connect("PUB.INITO", "PUB.REQ")
        res.inject("PUB.INIT")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK"}


async def test_untyped_subscriber_output_takes_published_type() -> None:
    """A SUBSCRIBE_1 whose RD_1 is unconnected still receives the published value."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_1", "127.0.0.1:0")
        res.start()
        res.inject("SUB.INIT")
        await rec.wait("SUB", "INITO")
        port = res.fb("SUB").layer.local_address[1]  # type: ignore[attr-defined]
        comm_fb(res, "PUB", "PUBLISH_1", f"127.0.0.1:{port}")
        res.write_parameter("PUB.SD_1", "WORD#16#AFFE")
        res.connect("PUB.INITO", "PUB.REQ")
        res.inject("PUB.INIT")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values == {"QO": True, "STATUS": "OK", "RD_1": 0xAFFE}


async def test_init_plus_twice_is_ok_and_keeps_the_socket() -> None:
    """INIT+ on an open FB answers INITO OK again without reopening (same port)."""
    async with running_device() as dev:
        res, rec = new_resource(dev)
        comm_fb(res, "SUB", "SUBSCRIBE_1", "127.0.0.1:0")
        res.start()
        res.inject("SUB.INIT")
        await rec.wait("SUB", "INITO")
        layer = res.fb("SUB").layer  # type: ignore[attr-defined]
        res.inject("SUB.INIT")
        inits = await rec.wait("SUB", "INITO", 2)
        assert inits[1].values == {"QO": True, "STATUS": "OK"}
        assert res.fb("SUB").layer is layer  # type: ignore[attr-defined]
