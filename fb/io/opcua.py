"""OPC UA service FBs: OPCUA_READ_n, OPCUA_WRITE_n, OPCUA_SUBSCRIBE_n, OPCUA_METHOD_n_m.

ENDPOINT is an `opc.tcp://host:port[/path]` URL or `@name`, a client profile of the
device. Security (Basic256Sha256/Aes128_Sha256_RsaOaep Sign or SignAndEncrypt with our
certificate and key, a pinned server certificate, username/password) comes, as in
FORTE, from a device-level file, not from FB inputs: `fb.io.opcua_clients` loads it and
`use_opcua_clients(device, profiles)` attaches it; an ENDPOINT equal to a profile's
endpoint uses that profile. A refused handshake is INITO QO=FALSE with the OPC UA status
(`BadUserAccessDenied`, `BadSecurityChecksFailed`, ...); a profile that cannot be used
(unknown `@name`, password variable unset) is STATUS `INVALID_ID: <why>`.
NODE_i / METHOD / OBJECT are NodeIds
(`ns=2;s=Plant.Pump1.Speed`) or browse paths (`/Objects/2:Plant/2:Pump1/2:Speed`).
Sessions are shared per endpoint through the device's `IoPool` (see `fb.io.pool`) and
reconnect by themselves (backoff capped at 1 s). Quality travels with the data:
QO=TRUE and STATUS `OK` for Good values; otherwise QO=FALSE, STATUS the OPC UA status
name (`BadNotConnected`, `BadNodeIdUnknown`, ...) and the RD keeps its last good value.

Arrays (ValueRank >= 1 nodes such as a waveform block) arrive as lists. An RD connected
to an ARRAY input takes that exact shape: a value of another shape or a scalar answers
QO=FALSE, STATUS `BadTypeMismatch: RD_i: <why>` and the RD keeps its last good value.
WRITE accepts list/array SD values for array nodes.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Sequence

import structlog

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    SecurityError,
)
from drivers.opcua import (
    DataValueResult,
    NodeAddress,
    OpcUaClientConfig,
    OpcUaClientSession,
    OpcUaReconnectConfig,
    OpcUaSecurityConfig,
    OpcUaSubscription,
    OpcUaSubscriptionConfig,
    parse_address,
)
from drivers.opcua.errors import OpcUaSecurityError, OpcUaStatusError
from fb.family import family_type, pin_count, pin_names
from fb.io.base import STATUS_INVALID_ID, STATUS_OK, IoFB
from fb.io.opcua_clients import (
    OpcUaClientProfile,
    opcua_clients_of,
)
from fb.io.pool import IoLease, pool_for
from testbed.model import ServiceFBType

__all__ = [
    "OpcUaFB",
    "opcua_client_config",
    "opcua_method_type",
    "opcua_read_type",
    "opcua_session",
    "opcua_status",
    "opcua_subscribe_type",
    "opcua_write_type",
]

log = structlog.get_logger(__name__)

_MAX_PINS = 1024
_count = functools.partial(pin_count, limit=_MAX_PINS, minimum=0)
_make = functools.partial(family_type, module=__name__)
_names = pin_names


def opcua_client_config(endpoint: str, profile: OpcUaClientProfile | None = None
                        ) -> OpcUaClientConfig:
    """The client settings the I/O FBs use: short deadlines, reconnect within a second,
    and the user and channel security of the endpoint's client profile, if any."""
    config = OpcUaClientConfig(
        endpoint=endpoint,
        connect_timeout_s=3.0,
        request_timeout_s=2.0,
        watchdog_interval_s=0.5,
        reconnect=OpcUaReconnectConfig(initial_delay_s=0.1, max_delay_s=1.0),
        username=profile.username if profile is not None else None,
        password=profile.secret() if profile is not None else None,
        security=profile.security if profile is not None else OpcUaSecurityConfig(),
    )
    if profile is not None and profile.application_uri is not None:
        config = config.model_copy(update={"application_uri": profile.application_uri})
    return config


async def opcua_session(lease: IoLease, endpoint: str, profile: str | None = None,
                        ) -> OpcUaClientSession:
    """The pool's shared session for `endpoint` (opened on first use).

    `profile` names the device's client profile to use; None takes the profile whose
    endpoint is `endpoint` (see `fb.io.opcua_clients`), or none.
    """
    profiles = opcua_clients_of(lease.pool)
    if profile is None:
        found = profiles.for_endpoint(endpoint)
        profile = found[0] if found is not None else None
    config = opcua_client_config(endpoint,
                                 profiles.named(profile) if profile is not None else None)
    session = await lease.session(("opcua", endpoint, profile),
                                  lambda: OpcUaClientSession(config))
    assert isinstance(session, OpcUaClientSession)
    return session


def opcua_status(exc: BaseException) -> str:
    """A STATUS text for a driver error: the OPC UA status name where there is one."""
    if isinstance(exc, OpcUaStatusError | OpcUaSecurityError) and exc.status_name:
        return exc.status_name
    if isinstance(exc, SecurityError):
        return "BadSecurityChecksFailed"
    if isinstance(exc, DriverTimeout):
        return "BadTimeout"
    if isinstance(exc, ConnectionLost):
        return "BadNotConnected"
    if isinstance(exc, DriverConfigError):
        return "BadNodeIdInvalid"
    return "BadCommunicationError"


def _quality_status(results: Sequence[DataValueResult]) -> tuple[bool, str]:
    for result in results:
        if not result.good:
            return False, result.quality.status_name
    return True, STATUS_OK


class OpcUaFB(IoFB):
    """Shared INIT handling: parse ENDPOINT and the node addresses, open, resolve."""

    TYPE_MISMATCH = "BadTypeMismatch"
    _profile: str | None = None

    def _endpoint(self) -> str:
        return str(self.ENDPOINT or "").strip()

    def _addresses(self) -> list[NodeAddress]:
        return [parse_address(str(self.get(f"NODE_{i}") or "").strip())
                for i in range(1, self._node_count() + 1)]

    def _node_count(self) -> int:
        return self.N_RD or self.N_SD

    def on_INIT(self) -> None:
        if not self.QI:
            self._deinit()
            return
        try:
            endpoint, profile = self._resolve_endpoint(self._endpoint())
            addresses = self._init_addresses()
        except (DriverConfigError, ValueError) as exc:
            log.warning("io_invalid_config", fb=self.label, error=str(exc))
            self._init_done(False, f"{STATUS_INVALID_ID}: {exc}")
            return
        self._open_lease()
        self._profile = profile
        self._configured(endpoint, addresses)
        self._spawn(self._init_job, "init")

    def _resolve_endpoint(self, text: str) -> tuple[str, str | None]:
        """ENDPOINT (a URL or `@profile`) -> URL and client profile; checks the profile
        fully here (credentials, files named) so a bad one fails INIT, not a job."""
        profiles = opcua_clients_of(pool_for(self._scope()))
        endpoint, profile = profiles.resolve(text)
        opcua_client_config(endpoint, profiles.named(profile) if profile else None)
        return endpoint, profile

    def _init_addresses(self) -> list[NodeAddress]:
        return self._addresses()

    def _configured(self, endpoint: str, addresses: list[NodeAddress]) -> None:
        self._ep = endpoint
        self._addrs = addresses
        interval = self.get("INTERVAL") if "INTERVAL" in self.INPUTS else None
        interval_ms = int(interval or 0) / 1e6
        self._interval_ms = interval_ms if interval_ms > 0 else 100.0

    async def _init_job(self, lease: IoLease, generation: int) -> None:
        try:
            session = await opcua_session(lease, self._ep, self._profile)
            if self._addrs:
                await session.resolve(self._addrs)
        except DriverError as exc:
            status = opcua_status(exc)
            log.warning("io_opcua_init_failed", fb=self.label, error=str(exc))
            self._post_current(generation, lambda: self._init_done(False, status))
            return
        self._post_current(generation, lambda: self._init_done(True, STATUS_OK))


class _ReadFB(OpcUaFB):
    def on_REQ(self) -> None:
        if self._begin_request():
            self._spawn(self._read_job, "read")

    async def _read_job(self, lease: IoLease, generation: int) -> None:
        try:
            session = await opcua_session(lease, self._ep, self._profile)
            results = await session.read(self._addrs)
        except DriverError as exc:
            status = opcua_status(exc)
            self._post_current(generation, lambda: self._finish(False, status, None))
            return
        ok, status = _quality_status(results)
        values = tuple(r.value if r.good else None for r in results)
        self._post_current(generation, lambda: self._finish(ok, status, values))

    def _finish(self, ok: bool, status: str, values: tuple[object, ...] | None) -> None:
        self._end_request()
        self._answer(ok, status, values)


class _WriteFB(OpcUaFB):
    def on_REQ(self) -> None:
        if self._begin_request():
            values = tuple(self.get(f"SD_{i}") for i in range(1, self.N_SD + 1))
            self._spawn(lambda lease, gen: self._write_job(lease, gen, values), "write")

    async def _write_job(self, lease: IoLease, generation: int,
                         values: tuple[object, ...]) -> None:
        try:
            session = await opcua_session(lease, self._ep, self._profile)
            qualities = await session.write(list(zip(self._addrs, values, strict=True)),
                                            check=False)
        except DriverError as exc:
            status = opcua_status(exc)
            self._post_current(generation, lambda: self._finish(False, status))
            return
        bad = next((q for q in qualities if not q.good), None)
        ok, status = (True, STATUS_OK) if bad is None else (False, bad.status_name)
        self._post_current(generation, lambda: self._finish(ok, status))

    def _finish(self, ok: bool, status: str) -> None:
        self._end_request()
        self._answer(ok, status)


class _MethodFB(OpcUaFB):
    def _init_addresses(self) -> list[NodeAddress]:
        method = parse_address(str(self.METHOD or "").strip())
        text = str(self.OBJECT or "").strip()
        owner = parse_address(text) if text else None
        if owner is None and not hasattr(method, "parent"):
            raise DriverConfigError("a METHOD given as NodeId needs OBJECT")
        self._method = method
        self._object = owner
        return [method] if owner is None else [owner, method]

    def on_REQ(self) -> None:
        if self._begin_request():
            inputs = tuple(self.get(f"SD_{i}") for i in range(1, self.N_SD + 1))
            self._spawn(lambda lease, gen: self._call_job(lease, gen, inputs), "call")

    async def _call_job(self, lease: IoLease, generation: int,
                        inputs: tuple[object, ...]) -> None:
        try:
            session = await opcua_session(lease, self._ep, self._profile)
            outputs = await session.call_method(self._method, *inputs,
                                                object_address=self._object)
        except DriverError as exc:
            status = opcua_status(exc)
            self._post_current(generation, lambda: self._finish(False, status, None))
            return
        if len(outputs) != self.N_RD:
            status = f"BadArgumentsMissing: {len(outputs)} outputs for {self.N_RD} RDs"
            self._post_current(generation, lambda: self._finish(False, status, None))
            return
        values = tuple(outputs)
        self._post_current(generation, lambda: self._finish(True, STATUS_OK, values))

    def _finish(self, ok: bool, status: str, values: tuple[object, ...] | None) -> None:
        self._end_request()
        self._answer(ok, status, values)


class _SubscribeFB(OpcUaFB):
    """IND per data-change notification (all RDs, the changed one updated)."""

    def _fire_data_event(self) -> None:
        self.emit_IND()

    async def _init_job(self, lease: IoLease, generation: int) -> None:
        interval_ms = self._interval_ms
        # sampling interval 0: the server reports every change (exception-based)
        config = OpcUaSubscriptionConfig(publishing_interval_ms=interval_ms,
                                         sampling_interval_ms=0.0, queue_capacity=1024)
        try:
            session = await opcua_session(lease, self._ep, self._profile)
            subscription = await session.subscribe(self._addrs, config)
        except DriverError as exc:
            status = opcua_status(exc)
            log.warning("io_opcua_subscribe_failed", fb=self.label, error=str(exc))
            self._post_current(generation, lambda: self._init_done(False, status))
            return
        index = {address: i for i, address in enumerate(self._addrs)}
        self._post_current(generation, lambda: self._init_done(True, STATUS_OK))
        try:
            await self._pump(subscription, index, generation)
        finally:
            await subscription.aclose()

    async def _pump(self, subscription: OpcUaSubscription, index: dict[NodeAddress, int],
                    generation: int) -> None:
        async for first in subscription:
            batch = [first]
            while (more := subscription.get_nowait()) is not None:
                batch.append(more)
            self._post_current(generation, functools.partial(self._notified, tuple(batch), index))
            await asyncio.sleep(0)

    def _notified(self, batch: tuple[DataValueResult, ...],
                  index: dict[NodeAddress, int]) -> None:
        for result in batch:
            position = index.get(result.address)
            if position is None:
                continue
            if result.good:
                value, reason = self._rd_value(position, result.value)
                setattr(self, self._rd_attrs[position], value)
                if reason is None:
                    self._good += 1
                    self.QO = True
                    self.STATUS = STATUS_OK
                else:  # wrong shape or type: the RD keeps its last good value
                    self._bad += 1
                    self.QO = False
                    self.STATUS = reason
            else:  # the RD keeps its last good value
                self._bad += 1
                self.QO = False
                self.STATUS = result.quality.status_name
            self.emit_IND()


# -- type families ----------------------------------------------------------------------


def opcua_read_type(m: re.Match[str]) -> ServiceFBType:
    """OPCUA_READ_<n>: batched read of n nodes on REQ, CNF with RD_1..RD_n."""
    n = _count(m.group(1), "OPCUA_READ")
    nodes, rds = _names("NODE", n), _names("RD", n)
    return _make(
        f"OPCUA_READ_{n}", _ReadFB,
        f"INIT(QI,ENDPOINT,{','.join(nodes)}) REQ(QI)",
        f"INITO(QO,STATUS) CNF(QO,STATUS,{','.join(rds)})",
        " ".join(["QI:BOOL", "ENDPOINT:WSTRING", *(f"{x}:WSTRING" for x in nodes)]),
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        0, n, f"Read {n} OPC UA node(s) in one request on REQ")


def opcua_write_type(m: re.Match[str]) -> ServiceFBType:
    """OPCUA_WRITE_<n>: batched write of SD_1..SD_n to n nodes on REQ."""
    n = _count(m.group(1), "OPCUA_WRITE")
    nodes, sds = _names("NODE", n), _names("SD", n)
    return _make(
        f"OPCUA_WRITE_{n}", _WriteFB,
        f"INIT(QI,ENDPOINT,{','.join(nodes)}) REQ(QI,{','.join(sds)})",
        "INITO(QO,STATUS) CNF(QO,STATUS)",
        " ".join(["QI:BOOL", "ENDPOINT:WSTRING", *(f"{x}:WSTRING" for x in nodes),
                  *(f"{x}:ANY" for x in sds)]),
        "QO:BOOL STATUS:WSTRING",
        n, 0, f"Write {n} OPC UA node(s) in one request on REQ")


def opcua_subscribe_type(m: re.Match[str]) -> ServiceFBType:
    """OPCUA_SUBSCRIBE_<n>: IND with RD_1..RD_n on every data change of n nodes."""
    n = _count(m.group(1), "OPCUA_SUBSCRIBE")
    nodes, rds = _names("NODE", n), _names("RD", n)
    return _make(
        f"OPCUA_SUBSCRIBE_{n}", _SubscribeFB,
        f"INIT(QI,ENDPOINT,INTERVAL,{','.join(nodes)})",
        f"INITO(QO,STATUS) IND(QO,STATUS,{','.join(rds)})",
        " ".join(["QI:BOOL", "ENDPOINT:WSTRING", "INTERVAL:TIME",
                  *(f"{x}:WSTRING" for x in nodes)]),
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        0, n, f"Subscribe to {n} OPC UA node(s); IND per data change")


def opcua_method_type(m: re.Match[str]) -> ServiceFBType:
    """OPCUA_METHOD_<n>_<m>: call METHOD (on OBJECT) with n inputs, m outputs on REQ."""
    n = _count(m.group(1), "OPCUA_METHOD")
    k = _count(m.group(2), "OPCUA_METHOD")
    sds, rds = _names("SD", n), _names("RD", k)
    return _make(
        f"OPCUA_METHOD_{n}_{k}", _MethodFB,
        "INIT(QI,ENDPOINT,METHOD,OBJECT) " + f"REQ({','.join(['QI', *sds])})",
        f"INITO(QO,STATUS) CNF({','.join(['QO', 'STATUS', *rds])})",
        " ".join(["QI:BOOL", "ENDPOINT:WSTRING", "METHOD:WSTRING", "OBJECT:WSTRING",
                  *(f"{x}:ANY" for x in sds)]),
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        n, k, f"Call an OPC UA method with {n} input(s) and {k} output(s) on REQ")
