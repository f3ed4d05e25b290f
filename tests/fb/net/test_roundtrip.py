"""Values of every elementary type survive PUBLISH_n -> UDP -> SUBSCRIBE_n unchanged."""

from __future__ import annotations

import asyncio
import math
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from net_testkit import comm_fb, new_resource, running_device

from fb.net.layers.ip import UdpSubscribeLayer

_I64 = st.integers(-(1 << 63), (1 << 63) - 1)
_TEXT = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF, exclude_categories=("Cs",)),
                max_size=60)
_WTEXT = st.text(st.characters(min_codepoint=1, max_codepoint=0xFFFF, exclude_categories=("Cs",)),
                 max_size=60)


def _real32() -> st.SearchStrategy[float]:
    return st.floats(width=32, allow_nan=False).map(
        lambda f: struct.unpack(">f", struct.pack(">f", f))[0])


STRATEGIES: dict[str, st.SearchStrategy[object]] = {
    "BOOL": st.booleans(),
    "SINT": st.integers(-128, 127),
    "INT": st.integers(-(1 << 15), (1 << 15) - 1),
    "DINT": st.integers(-(1 << 31), (1 << 31) - 1),
    "LINT": _I64,
    "USINT": st.integers(0, 255),
    "UINT": st.integers(0, 0xFFFF),
    "UDINT": st.integers(0, 0xFFFFFFFF),
    "ULINT": st.integers(0, (1 << 64) - 1),
    "BYTE": st.integers(0, 0xFF),
    "WORD": st.integers(0, 0xFFFF),
    "DWORD": st.integers(0, 0xFFFFFFFF),
    "LWORD": st.integers(0, (1 << 64) - 1),
    "REAL": _real32(),
    "LREAL": st.floats(allow_nan=False),
    "STRING": _TEXT,
    "WSTRING": _WTEXT,
    "TIME": st.integers(-(1 << 53), 1 << 53).map(lambda us: us * 1000),
    "DATE": _I64,
    "TIME_OF_DAY": _I64,
    "DATE_AND_TIME": _I64,
}

typed_values = st.sampled_from(sorted(STRATEGIES)).flatmap(
    lambda t: st.tuples(st.just(t), STRATEGIES[t]))


async def _roundtrip(points: list[tuple[str, object]]) -> list[object]:
    async with running_device() as dev:
        res, rec = new_resource(dev)
        n = len(points)
        comm_fb(res, "SUB", f"SUBSCRIBE_{n}", "127.0.0.1:0")
        for i, (t, value) in enumerate(points, start=1):
            res.create_fb(f"IN{i}", f"{t}2{t}")
            res.create_fb(f"OUT{i}", f"{t}2{t}")
            res.connect(f"SUB.RD_{i}", f"OUT{i}.IN")
            res.fb(f"IN{i}").set("IN", value)
            if i > 1:
                res.connect(f"IN{i - 1}.CNF", f"IN{i}.REQ")
        res.start()
        res.inject("SUB.INIT")
        await rec.wait("SUB", "INITO")
        layer = res.fb("SUB").layer  # type: ignore[attr-defined]
        assert isinstance(layer, UdpSubscribeLayer)
        assert layer.local_address is not None
        comm_fb(res, "PUB", f"PUBLISH_{n}", f"127.0.0.1:{layer.local_address[1]}")
        for i in range(1, n + 1):
            res.connect(f"IN{i}.OUT", f"PUB.SD_{i}")
        res.connect(f"IN{n}.CNF", "PUB.REQ")
        res.connect("PUB.INITO", "IN1.REQ")
        res.inject("PUB.INIT")
        (ind,) = await rec.wait("SUB", "IND")
        assert ind.values["QO"] is True, ind.values
        return [ind.values[f"RD_{i}"] for i in range(1, n + 1)]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and type(a) is type(b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(typed_values, min_size=1, max_size=4))
def test_publish_subscribe_roundtrip(points: list[tuple[str, object]]) -> None:
    """Whatever typed values a PUBLISH_n sends, SUBSCRIBE_n's RDs hold exactly those values."""
    received = asyncio.run(_roundtrip(points))
    for (t, sent), got in zip(points, received, strict=True):
        assert _same(sent, got), (t, sent, got)
