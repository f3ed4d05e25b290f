"""The weight payload format: header fields, float32 little-endian data, clear decode errors."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest

from testbed.ai.errors import FederatedError
from testbed.ai.federated import PayloadKind, WeightPayload, fedavg, payload_size
from testbed.ai.federated.transport import InProcessTransport


def _payload() -> WeightPayload:
    rng = np.random.default_rng(0)
    arrays = (rng.normal(size=(9, 16)).astype(np.float32), np.arange(16, dtype=np.float32),
              rng.normal(size=(16, 4)).astype(np.float32), np.zeros(4, np.float32))
    return WeightPayload(PayloadKind.UPDATE, 7, "site_a", 208, arrays)


def test_round_trip_keeps_header_and_arrays() -> None:
    """Encoding then decoding gives back kind, round, site, sample count and every array."""
    original = _payload()
    decoded = WeightPayload.decode(original.encode())
    assert (decoded.kind, decoded.round_index, decoded.site, decoded.sample_count) == (
        PayloadKind.UPDATE, 7, "site_a", 208)
    for a, b in zip(decoded.arrays, original.arrays, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_layout_is_the_documented_one() -> None:
    """Header fields sit at the documented offsets and the data is float32 little-endian."""
    payload = _payload()
    data = payload.encode()
    assert data[:4] == b"TBFW"
    assert struct.unpack_from("<BBHIQH", data, 4) == (1, 2, 6, 7, 208, 4)
    assert data[22:28] == b"site_a"
    assert data[28] == 2
    assert struct.unpack_from("<II", data, 29) == (9, 16)
    shapes = [a.shape for a in payload.arrays]
    assert len(data) == payload_size("site_a", shapes)
    tail = np.frombuffer(data[-16:], dtype="<f4")
    np.testing.assert_array_equal(tail, np.zeros(4, np.float32))
    first = np.frombuffer(data, dtype="<f4", count=144, offset=len(data) - 4 * (144 + 16 + 64 + 4))
    np.testing.assert_array_equal(first.reshape(9, 16), payload.arrays[0])


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda d: d[:10], "shorter than the header"),
    (lambda d: b"XXXX" + d[4:], "not a testbed weight payload"),
    (lambda d: d[:5] + b"\x09" + d[6:], "unknown payload kind 9"),
    (lambda d: d[:-4], "data bytes"),
    (lambda d: d + b"\x00\x00\x00\x00", "data bytes"),
    (lambda d: d[:30], "truncated or corrupt header"),
])
def test_malformed_payloads_are_refused(mangle: Callable[[bytes], bytes], message: str) -> None:
    """Truncated, foreign or inconsistent bytes raise FederatedError naming the source."""
    data = _payload().encode()
    with pytest.raises(FederatedError, match=message) as info:
        WeightPayload.decode(mangle(data), source="update from site_a")
    assert "update from site_a" in str(info.value)


async def test_in_process_mailbox_is_bounded_and_counts_refusals() -> None:
    """Past its capacity the aggregator's mailbox refuses an update and counts it."""
    transport = InProcessTransport(["site_a", "site_b"], timeout_s=0.2)
    for _ in range(4):
        await transport.send_update(1, "site_a", b"x")
    with pytest.raises(FederatedError, match="mailbox full"):
        await transport.send_update(1, "site_a", b"x")
    assert transport.statistics().rejected == 1
    assert await transport.next_update(1) == b"x"
    with pytest.raises(FederatedError, match="round 2"):
        await transport.next_update(2)
    with pytest.raises(FederatedError, match="unknown site"):
        await transport.next_global("site_c", 0)


def test_fedavg_weights_by_sample_count_in_any_arrival_order() -> None:
    """The average weighs each site by its samples and is bit-identical in any order."""
    a = WeightPayload(PayloadKind.UPDATE, 1, "site_a", 1, (np.full((2, 2), 1.0, np.float32),))
    b = WeightPayload(PayloadKind.UPDATE, 1, "site_b", 3, (np.full((2, 2), 5.0, np.float32),))
    rng = np.random.default_rng(1)
    c = WeightPayload(PayloadKind.UPDATE, 1, "site_c", 7,
                      (rng.normal(size=(2, 2)).astype(np.float32),))
    (two,) = fedavg([a, b])
    np.testing.assert_array_equal(two, np.full((2, 2), 4.0, np.float32))
    first = fedavg([a, b, c])[0]
    for order in ([c, b, a], [b, c, a], [c, a, b]):
        assert fedavg(order)[0].tobytes() == first.tobytes()
