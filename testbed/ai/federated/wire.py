"""The binary format of what travels in a federated round: a header, then float32 arrays.

Only weights (and, once, feature moments) leave a site. One message is

```
offset  size    field (all little-endian)
0       4       magic b"TBFW"
4       1       format version (1)
5       1       kind (1 statistics, 2 site update, 3 initial global model, 4 global model)
6       2       L: length of the site name in bytes (0 for a global model)
8       4       round (u32; round 0 is the statistics/initial-model exchange)
12      8       sample count behind the arrays (u64; the FedAvg weight)
20      2       K: number of arrays
22      L       site name, UTF-8
...     K times 1 byte ndim d, then d u32 dimensions
...     the K arrays' elements as float32 little-endian, C order, one after the other
```

so a payload is `22 + L + sum(1 + 4 d) + 4 * (number of parameters)` bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from testbed.ai.errors import FederatedError

__all__ = ["MAGIC", "PayloadKind", "WeightPayload", "payload_size"]

MAGIC = b"TBFW"
VERSION = 1
_HEADER = struct.Struct("<4sBBHIQH")
_DIM = struct.Struct("<I")
_FLOAT = np.dtype("<f4")


class PayloadKind(enum.IntEnum):
    """What a payload carries (byte 5 of the header)."""

    STATISTICS = 1
    """A site's feature mean and mean of squares (round 0), for the shared standardization."""
    UPDATE = 2
    """A site's dense-layer weights after its local epochs."""
    GLOBAL_INIT = 3
    """The aggregator's starting model: standardization mean, scale, then the layers."""
    GLOBAL = 4
    """The sample-weighted average of a round's updates."""


@dataclass(frozen=True, slots=True)
class WeightPayload:
    """One decoded message: who sent it, for which round, over how many samples, the arrays."""

    kind: PayloadKind
    round_index: int
    site: str
    sample_count: int
    arrays: tuple[NDArray[np.float32], ...]

    def encode(self) -> bytes:
        """The wire bytes (the arrays are rounded to float32)."""
        name = self.site.encode()
        if len(name) > 0xFFFF or len(self.arrays) > 0xFFFF:
            raise FederatedError(f"payload of {self.site!r}: name or array count too long")
        if not 0 <= self.round_index <= 0xFFFFFFFF or self.sample_count < 0:
            raise FederatedError(f"payload of {self.site!r}: round or sample count out of range")
        parts = [_HEADER.pack(MAGIC, VERSION, int(self.kind), len(name), self.round_index,
                              self.sample_count, len(self.arrays)), name]
        for array in self.arrays:
            parts.append(bytes([array.ndim]))
            parts.extend(_DIM.pack(d) for d in array.shape)
        parts.extend(np.ascontiguousarray(a, dtype=_FLOAT).tobytes() for a in self.arrays)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, *, source: str = "payload") -> WeightPayload:
        """Parse wire bytes; a malformed message raises `FederatedError` naming `source`."""
        if len(data) < _HEADER.size:
            raise FederatedError(f"{source}: {len(data)} bytes is shorter than the header")
        magic, version, kind, name_len, round_index, samples, count = _HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise FederatedError(f"{source}: not a testbed weight payload (magic {magic!r}, "
                                 f"version {version})")
        try:
            payload_kind = PayloadKind(kind)
        except ValueError as exc:
            raise FederatedError(f"{source}: unknown payload kind {kind}") from exc
        offset = _HEADER.size
        try:
            site = data[offset:offset + name_len].decode()
            offset += name_len
            shapes: list[tuple[int, ...]] = []
            for _ in range(count):
                ndim = data[offset]
                offset += 1
                shapes.append(tuple(_DIM.unpack_from(data, offset + 4 * i)[0]
                                    for i in range(ndim)))
                offset += 4 * ndim
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise FederatedError(f"{source}: truncated or corrupt header ({exc})") from exc
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        if len(data) - offset != 4 * sum(sizes):
            raise FederatedError(f"{source}: {len(data) - offset} data bytes, the header's "
                                 f"shapes {shapes} need {4 * sum(sizes)}")
        arrays = []
        for shape, size in zip(shapes, sizes, strict=True):
            flat = np.frombuffer(data, dtype=_FLOAT, count=size, offset=offset)
            arrays.append(flat.reshape(shape).astype(np.float32))
            offset += 4 * size
        return cls(payload_kind, round_index, site, samples, tuple(arrays))


def payload_size(site: str, shapes: list[tuple[int, ...]]) -> int:
    """Bytes of a payload with these array shapes (the formula in the module docstring)."""
    header = _HEADER.size + len(site.encode()) + sum(1 + 4 * len(s) for s in shapes)
    return header + 4 * sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
