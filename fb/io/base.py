"""What every field-I/O service FB shares: its pool lease, generations, bounded requests.

An FB leases the device's `IoPool` on INIT+ and gives the lease back on INIT-, on
resource stop/kill and on deletion. Every job it spawns carries the FB's generation;
results of an older generation (an INIT- or re-INIT happened meanwhile) are dropped
and counted as stale. At most `MAX_PENDING` requests of one FB are in flight; a REQ
beyond that answers at once with QO=FALSE, STATUS `BUSY` (counted).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import structlog

from fb.io.arrays import to_array
from fb.io.pool import IoLease, pool_for
from testbed.errors import TestbedError
from testbed.runtime.instance import attr_name
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB
from testbed.types import ArrayType, ElementaryType, VarType

__all__ = [
    "MAX_PENDING",
    "IoFB",
    "IoFBStatistics",
    "convert_checked",
    "convert_for",
    "convert_value",
]

log = structlog.get_logger(__name__)

MAX_PENDING = 16
"""Requests one FB may have in flight before REQ answers BUSY."""

STATUS_OK = "OK"
STATUS_BUSY = "BUSY"
STATUS_NOT_INITIALISED = "NOT_INITIALISED"
STATUS_TERMINATED = "TERMINATED"
STATUS_INVALID_ID = "INVALID_ID"
STATUS_INHIBITED = "INHIBITED"


@dataclass(frozen=True, slots=True)
class IoFBStatistics:
    """Counters of one field-I/O FB since it was created."""

    requests: int
    good: int
    bad: int
    busy: int
    stale: int
    pending: int


class IoFB(ServiceFB):
    """Base of the OPC UA and Modbus service FBs (not a type itself)."""

    N_SD: ClassVar[int] = 0
    N_RD: ClassVar[int] = 0
    TYPE_MISMATCH: ClassVar[str] = "DATA_TYPE_ERROR"
    """STATUS prefix when a value does not fit the type its RD drives (OPC UA FBs use
    the OPC UA name, BadTypeMismatch)."""

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._lease: IoLease | None = None
        self._generation = 0
        self._ready = False
        self._pending = 0
        self._requests = 0
        self._good = 0
        self._bad = 0
        self._busy = 0
        self._stale = 0
        self._rd_attrs = tuple(attr_name(f"RD_{i}") for i in range(1, self.N_RD + 1))
        self._rd_types: tuple[VarType | None, ...] = (None,) * self.N_RD
        self._rd_typed = False

    # -- lease and generations --------------------------------------------------------

    @property
    def label(self) -> str:
        """`resource.FB` for log lines."""
        return f"{self._res.name}.{self.name}"

    @property
    def ready(self) -> bool:
        """True between a successful INITO and INIT-/stop."""
        return self._ready

    def _scope(self) -> object:
        res = self._res
        return res.device if res.device is not None else res

    def _open_lease(self) -> IoLease:
        self._close_lease()
        self._generation += 1
        self._rd_types = self._find_rd_types()
        self._rd_typed = any(t is not None for t in self._rd_types)
        self._lease = pool_for(self._scope()).lease(self.label)
        return self._lease

    def _close_lease(self) -> None:
        lease, self._lease = self._lease, None
        self._ready = False
        self._pending = 0
        self._generation += 1
        if lease is not None:
            lease.close()

    def _spawn(
        self, job: Callable[[IoLease, int], Coroutine[Any, Any, None]], name: str
    ) -> None:
        """Run `job(lease, generation)` in the pool; the job posts its results back."""
        lease = self._lease
        if lease is None:
            return
        generation = self._generation
        lease.spawn(lambda: job(lease, generation), name)

    def _post_current(self, generation: int, thunk: Callable[[], None]) -> None:
        """Post `thunk` to the resource; it runs only if the FB is still in `generation`."""

        def run() -> None:
            if generation != self._generation:
                self._stale += 1
                return
            thunk()

        self.post(run)

    def on_resource_stop(self) -> None:
        self._close_lease()

    # -- RD types -----------------------------------------------------------------------

    def _find_rd_types(self) -> tuple[VarType | None, ...]:
        """The type each ANY RD takes from what it drives (None: values go out as they come).

        An elementary destination is recorded by the resource (`_anytype`); an ARRAY
        destination is looked up here from the resource's data connections.
        """
        anytypes: dict[str, VarType] = self.__dict__.get("_anytype") or {}
        found: list[VarType | None] = []
        for index in range(1, self.N_RD + 1):
            pin = f"RD_{index}"
            found.append(anytypes.get(pin) or self._array_destination(pin))
        return tuple(found)

    def _array_destination(self, pin: str) -> ArrayType | None:
        source = f"{self.name}.{pin}"
        for conn in self._res.connections:
            if conn.kind != "data" or conn.source != source:
                continue
            try:
                dst, dpin = self._res.resolve(conn.destination)
            except TestbedError:
                continue
            decl = dst.INPUTS.get(dpin)
            if decl is not None and isinstance(decl.type, ArrayType):
                return decl.type
        return None

    def _rd_value(self, position: int, value: object) -> tuple[object, str | None]:
        """RD_<position+1>'s new value from a field value, or its old one and a reason."""
        target = self._rd_types[position]
        if target is None:
            return value, None
        pin = f"RD_{position + 1}"
        converted, reason = convert_checked(target, value)
        if reason is not None:
            log.warning("io_value_not_convertible", fb=self.name, pin=pin, reason=reason)
            old = getattr(self, self._rd_attrs[position])
            return old, f"{self.TYPE_MISMATCH}: {pin}: {reason}"
        return converted, None

    # -- INIT helpers -------------------------------------------------------------------

    def _init_done(self, ok: bool, status: str) -> None:
        self._ready = ok
        if not ok:
            self._close_lease()
            if status not in (STATUS_TERMINATED,):
                log.warning("io_init_failed", fb=self.label, status=status)
        self.QO = ok
        self.STATUS = status
        self.emit_INITO()

    def _deinit(self) -> None:
        self._close_lease()
        self._init_done(False, STATUS_TERMINATED)

    # -- REQ helpers ------------------------------------------------------------------

    def _begin_request(self) -> bool:
        """Admission of a REQ: QI, initialised, below MAX_PENDING; else CNF QO=FALSE now."""
        self._requests += 1
        if not self.QI:
            self._answer(False, STATUS_INHIBITED)
            return False
        if not self._ready:
            self._answer(False, STATUS_NOT_INITIALISED)
            return False
        if self._pending >= MAX_PENDING:
            self._busy += 1
            self._answer(False, STATUS_BUSY)
            return False
        self._pending += 1
        return True

    def _end_request(self) -> None:
        self._pending = max(0, self._pending - 1)

    def _answer(self, ok: bool, status: str, values: tuple[object, ...] | None = None) -> None:
        """Set QO/STATUS (and RD_i when values are given) and fire the data event."""
        if ok:
            self._good += 1
        else:
            self._bad += 1
        if values is not None:
            if self._rd_typed:
                for position, value in enumerate(values):
                    if value is None:
                        continue
                    converted, reason = self._rd_value(position, value)
                    setattr(self, self._rd_attrs[position], converted)
                    if reason is not None and ok:
                        ok, status = False, reason
            elif None not in values and len(values) == len(self._rd_attrs):
                # untyped RDs, every value present: one C-level update of the instance
                # dict (the RDs are plain instance attributes) instead of n setattr calls
                self.__dict__.update(zip(self._rd_attrs, values, strict=True))
            else:  # a missing value keeps its RD's last one
                for attr, value in zip(self._rd_attrs, values, strict=False):
                    if value is not None:
                        setattr(self, attr, value)
        self.QO = ok
        self.STATUS = status
        self._fire_data_event()

    def _fire_data_event(self) -> None:
        self.emit_CNF()

    def statistics(self) -> IoFBStatistics:
        """Counters since creation."""
        return IoFBStatistics(self._requests, self._good, self._bad, self._busy, self._stale,
                              self._pending)


def convert_for(fb: ServiceFB, pin: str, value: object) -> object:
    """`value` converted to the IEC type an ANY pin took from its connection (if any)."""
    if value is None:
        return fb.get(pin)
    anytypes = fb.__dict__.get("_anytype")
    target = anytypes.get(pin) if anytypes else None
    converted = convert_value(target, value)
    if converted is None:
        log.warning("io_value_not_convertible", fb=fb.name, pin=pin, type=str(target),
                    value=repr(value)[:80])
        return fb.get(pin)
    return converted


def convert_value(target: object, value: object) -> object | None:
    """`value` as the elementary or ARRAY type `target` holds it (unchanged for other
    targets); None when it cannot be converted."""
    return convert_checked(target, value)[0]


def convert_checked(target: object, value: object) -> tuple[object | None, str | None]:
    """`value` converted to `target` and None, or None and why it cannot be."""
    if isinstance(target, ArrayType):
        try:
            return to_array(target, value), None
        except ValueError as exc:
            return None, str(exc)
    if isinstance(target, ElementaryType) and _is_array(value):
        return None, f"{target.name} needs a scalar, got an array"
    converted = _convert_scalar(target, value)
    if converted is None:
        return None, f"{target} cannot hold {value!r:.40}"
    return converted, None


def _is_array(value: object) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _convert_scalar(target: object, value: object) -> object | None:
    if not isinstance(target, ElementaryType):
        return value
    name = target.name
    try:
        if name in ("REAL", "LREAL"):
            return target.coerce(float(value))  # type: ignore[arg-type]
        if name == "BOOL":
            return target.coerce(bool(value))
        if name in ("STRING", "WSTRING"):
            return target.coerce(str(value))
        if isinstance(value, float):
            return target.coerce(round(value))
        return target.coerce(value)
    except (TypeError, ValueError, OverflowError):
        return None
