"""`fbdk[].<transport>[...]` and `raw[].<transport>[...]`: an encoding over a byte transport.

The outer layer picks the codec (`fb.net.codec`), the inner one the transport:
`ip[host:port]` (UDP or TCP by role, `fb.net.layers.ip`) or
`mqtt[tcp://host:port, clientID, topic]` (`fb.net.layers.mqtt`). Anything else,
or a stack of another depth, fails INIT with `INVALID_ID` naming the problem.
"""

from __future__ import annotations

from fb.net.codec import PayloadError, codec_for
from fb.net.layers.base import (
    CommLayer,
    ComStatus,
    DataPoints,
    LayerContext,
    LayerOutcome,
    outcome,
)
from testbed.fourdiac.comm_id import CommId, CommIdError, parse_ip_params

__all__ = ["InvalidLayer", "create_layer"]

_TRANSPORTS = ("ip", "mqtt")


class InvalidLayer:
    """A stack that cannot be built: INIT+ reports why; nothing is ever sent."""

    def __init__(self, result: LayerOutcome) -> None:
        self._result = result

    def open(self) -> LayerOutcome | None:
        return self._result

    def send(self, points: DataPoints) -> LayerOutcome:
        return outcome(ComStatus.NO_SOCKET, self._result.detail)

    def close(self) -> None:
        return None


def create_layer(comm_id: CommId, ctx: LayerContext) -> CommLayer:
    """Build (not open) the encoding + transport stack `comm_id` names."""
    if len(comm_id.layers) != 2 or comm_id.bottom.name not in _TRANSPORTS:
        return InvalidLayer(outcome(
            ComStatus.INVALID_ID,
            f"{comm_id}: expected {comm_id.top.name}[].ip[host:port] or "
            f"{comm_id.top.name}[].mqtt[tcp://host:port, clientID, topic]"))
    try:
        codec = codec_for(comm_id.top.name, ctx.rd_types)
    except PayloadError as exc:
        return InvalidLayer(exc.result)
    bottom = comm_id.bottom
    if bottom.name == "ip":
        from fb.net.layers.ip import create_ip_layer

        try:
            endpoint = parse_ip_params(bottom.params)
        except CommIdError as exc:
            return InvalidLayer(outcome(ComStatus.INVALID_ID, str(exc)))
        return create_ip_layer(endpoint, codec, ctx)
    from fb.net.layers.mqtt import create_mqtt_layer

    return create_mqtt_layer(bottom.params, codec, ctx)
