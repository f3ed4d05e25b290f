"""Shared pieces for the OPC UA tests (a plain module, not conftest, so its name is unique).

A plant-free address space and its method handlers.

Loop scope: asyncua's server takes ~2 s to start (it loads the standard address
space), so read/write/subscription tests share one server per module. With
pytest-asyncio 1.x that needs the fixture *and* the tests of that module on the
module's loop: ``@pytest_asyncio.fixture(scope="module", loop_scope="module")``
plus ``pytestmark = pytest.mark.asyncio(loop_scope="module")``. Tests that kill
or reconfigure a server create their own inside the test (function loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from drivers.opcua import (
    AddressSpaceSpec,
    ArgumentSpec,
    EngineeringUnitsSpec,
    MethodSpec,
    ObjectSpec,
    VariableSpec,
)

ADDRESS_SPACE = AddressSpaceSpec(
    nodes=(
        ObjectSpec(
            kind="folder",
            name="Plant",
            children=(
                ObjectSpec(
                    name="Pump1",
                    children=(
                        VariableSpec(
                            name="Speed",
                            data_type="Double",
                            initial=1450.0,
                            engineering_units=EngineeringUnitsSpec(
                                display_name="rpm", description="revolutions per minute"
                            ),
                            eu_range=(0.0, 3000.0),
                        ),
                        VariableSpec(
                            name="Setpoint", data_type="Float", initial=0.0, writable=True
                        ),
                        VariableSpec(name="Mode", data_type="Int16", initial=1, writable=True),
                        VariableSpec(name="Running", data_type="Boolean", initial=True),
                        VariableSpec(name="Tag", data_type="String", initial="P-101"),
                        MethodSpec(
                            name="Scale",
                            inputs=(
                                ArgumentSpec(name="value", data_type="Double"),
                                ArgumentSpec(name="factor", data_type="Int32"),
                            ),
                            outputs=(ArgumentSpec(name="result", data_type="Double"),),
                        ),
                    ),
                ),
            ),
        ),
    )
)


async def scale(value: object, factor: object) -> Sequence[object]:
    """Method handler: value * factor; a zero factor is an invalid argument."""
    assert isinstance(value, float)
    assert isinstance(factor, int)
    if factor == 0:
        raise ValueError("factor must not be zero")
    return [value * factor]


HANDLERS = {"Plant/Pump1/Scale": scale}


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll a condition on driver counters (no event exists for them) under a deadline."""
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)
