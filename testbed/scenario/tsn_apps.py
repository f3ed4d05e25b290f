"""The two IEC 61499 devices of the TSN link part: the cyclic controller and the I/O side.

Controller: `E_CYCLE` -> `E_CTU` (the frame's sequence number) -> `STRING2STRING` (padding
up to the payload size) -> `PUBLISH_2` over `fbdk[].ip[]` to the emulated link's control
port. I/O side: `SUBSCRIBE_2` (a free port on loopback) -> `UINT2UINT` (the value the I/O
applies). Both are in-process devices on the real clock, built with the scripting API,
and watched by one `ControlProbe`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from fb.net.layers.ip import UdpSubscribeLayer
from testbed.api import Application, Network, load
from testbed.errors import TestbedError
from testbed.scenario.tsn_probe import ControlProbe, ControlProbePoints

__all__ = ["ControlFlow", "TsnLinkError", "control_padding"]

_INIT_TIMEOUT_S = 5.0
_HOST = "127.0.0.1"
_FRAME_OVERHEAD = 6
"""Payload bytes besides the padding: UINT (tag + 2 bytes), STRING (tag + 2-byte length)."""


class TsnLinkError(TestbedError):
    """A schedule of the TSN link part could not be set up (a comm FB or the link failed)."""


def control_padding(payload_bytes: int) -> str:
    """The STRING that makes a control frame's UDP payload `payload_bytes` long."""
    return "x" * max(payload_bytes - _FRAME_OVERHEAD, 0)


def controller_application(cycle_ms: float, payload_bytes: int) -> Application:
    app = Application("Controller")
    app.fb("CYCLE", "E_CYCLE", DT=f"T#{round(cycle_ms * 1000)}us")
    app.fb("CTR", "E_CTU")
    app.fb("PAD", "STRING2STRING", IN=control_padding(payload_bytes))
    app.fb("PUB", "PUBLISH_2", QI=True)
    app.connect("CYCLE.EO", "CTR.CU")
    app.connect("CTR.CUO", "PAD.REQ")
    app.connect("PAD.CNF", "PUB.REQ")
    app.connect("CTR.CV", "PUB.SD_1")
    app.connect("PAD.OUT", "PUB.SD_2")
    return app


def io_application() -> Application:
    app = Application("IO")
    app.fb("SUB", "SUBSCRIBE_2", QI=True, ID=f"{_HOST}:0")
    app.fb("SEQ", "UINT2UINT")
    app.fb("DATA", "STRING2STRING")
    app.connect("SUB.RD_1", "SEQ.IN")
    app.connect("SUB.RD_2", "DATA.IN")
    app.connect("SUB.IND", "SEQ.REQ")
    return app


@dataclass(frozen=True, slots=True)
class ControlFlow:
    """The running controller and I/O devices of one schedule, and their probe."""

    controller: Network
    io: Network
    probe: ControlProbe
    subscriber_address: tuple[str, int]

    @classmethod
    async def start(cls, stack: contextlib.AsyncExitStack, cycle_ms: float,
                    payload_bytes: int) -> ControlFlow:
        """Start both devices (owned by `stack`); the subscriber listens, the cycle waits."""
        io = await _started(stack, io_application())
        await _init(io, "IO.SUB")
        layer = getattr(io.resolve("IO.SUB.INIT")[1], "layer", None)
        address = layer.local_address if isinstance(layer, UdpSubscribeLayer) else None
        if address is None:
            raise TsnLinkError("the I/O side's SUBSCRIBE has no UDP address")
        controller = await _started(stack, controller_application(cycle_ms, payload_bytes))
        probe = ControlProbe(ControlProbePoints(
            cycle=controller.resolve("Controller.CYCLE.EO")[1],
            counter=controller.resolve("Controller.CTR.CUO")[1],
            publisher=controller.resolve("Controller.PUB.CNF")[1],
            subscriber=io.resolve("IO.SUB.IND")[1]))
        controller.resource().add_tracer(probe)
        io.resource().add_tracer(probe)
        return cls(controller, io, probe, address)

    async def start_cycle(self) -> tuple[int, int]:
        """Start E_CYCLE; returns (period, next release) in monotonic ns."""
        await self.controller.ainject("Controller.CYCLE.START")
        cycle = self.controller.resolve("Controller.CYCLE.EO")[1]
        period_ns = int(getattr(cycle, "period_ns", 0))
        if period_ns <= 0:
            raise TsnLinkError("the controller's E_CYCLE did not start")
        return period_ns, int(getattr(cycle, "pending_deadline_ns", 0))

    async def publish_to(self, port: int) -> None:
        """Point PUBLISH at `port` on loopback and INIT it: frames flow from the next cycle."""
        self.controller.write("Controller.PUB.ID", f"{_HOST}:{port}")
        await _init(self.controller, "Controller.PUB")

    async def stop_cycle(self) -> None:
        await self.controller.ainject("Controller.CYCLE.STOP")


async def _started(stack: contextlib.AsyncExitStack, app: Application) -> Network:
    net = load(app, clock="real", start=False)
    await stack.enter_async_context(net)
    net.device.start()
    return net


async def _init(net: Network, fb_path: str) -> None:
    """INIT a comm FB and wait for INITO with QO."""
    with net.record() as rec:
        await net.ainject(f"{fb_path}.INIT")
        (inito,) = await rec.wait_for(f"{fb_path}.INITO", 1, _INIT_TIMEOUT_S)
    if not inito.values.get("QO"):
        raise TsnLinkError(f"{fb_path} INIT failed: {inito.values.get('STATUS')}")
