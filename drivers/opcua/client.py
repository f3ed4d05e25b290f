"""``OpcUaClientSession``: one supervised connection to one OPC UA server.

Owns exactly one asyncua ``Client`` at a time, created with asyncua's own
auto-reconnect switched off: when the server goes away, this session's
supervisor task (in the session's TaskGroup) reports the gap as Bad quality on
every subscription, drops the old client, connects a fresh one with exponential
backoff and re-creates the subscriptions. asyncua's internal tasks live and die
with each asyncua client (``disconnect`` cancels them).

Every network wait runs under a deadline from ``OpcUaClientConfig`` and inside
``_boundary``, which maps asyncua/transport exceptions to ``drivers.errors`` and
re-raises a cancellation that asyncua swallowed (its task-cancel helper catches
``CancelledError`` around awaits, which would otherwise eat our own
cancellation or an ``asyncio.timeout``).

Lifecycle: ``async with OpcUaClientSession(config) as session: ...`` (one-shot;
close from the task that opened it, which ``async with`` guarantees).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies, uacrypto

from drivers.errors import ConnectionLost, DriverConfigError, DriverError, DriverTimeout
from drivers.opcua._ua import AttributeIds, data_value, node_id, path_element, variant
from drivers.opcua.addressing import (
    BrowsePath,
    NodeAddress,
    NodeIdAddress,
    NodeIdKind,
    parse_address,
)
from drivers.opcua.config import (
    OpcUaClientConfig,
    OpcUaSubscriptionConfig,
    SecurityMode,
    SecurityPolicy,
)
from drivers.opcua.errors import error_for_status, item_error, map_asyncua_error
from drivers.opcua.quality import DataValueResult, Quality
from drivers.opcua.subscription import OpcUaSubscription, OpcUaSubscriptionStatistics
from drivers.opcua.values import coerce_array, coerce_value

__all__ = ["OpcUaClientSession", "OpcUaSessionState", "OpcUaSessionStatistics"]

_log = structlog.get_logger(__name__)

_POLICIES: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
}
_MODES: dict[SecurityMode, ua.MessageSecurityMode] = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}
_ROOT_FOLDER = 84
_HIERARCHICAL_REFERENCES = 33
_HAS_PROPERTY = 46


class OpcUaSessionState(enum.Enum):
    """Lifecycle and connection state of a session."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"  # lost, and reconnect is disabled
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class OpcUaSessionStatistics:
    """Counters of one session since it opened."""

    state: OpcUaSessionState
    connects: int
    connection_losses: int
    reconnect_attempts: int
    reads: int
    writes: int
    method_calls: int
    cached_nodes: int
    subscriptions: tuple[OpcUaSubscriptionStatistics, ...]

    @property
    def notifications_dropped(self) -> int:
        """Notifications lost to overflow over all subscriptions."""
        return sum(s.dropped_oldest + s.dropped_newest for s in self.subscriptions)


def _read_security_files(paths: Iterable[Path | None]) -> list[bytes | None]:
    return [path.read_bytes() if path is not None else None for path in paths]


def _variant_type_of(data_type: ua.NodeId) -> ua.VariantType | None:
    """The built-in VariantType for a DataType NodeId (ns 0, ids 1..25), else None."""
    ident = data_type.Identifier
    if data_type.NamespaceIndex == 0 and isinstance(ident, int) and 1 <= ident <= 25:
        return ua.VariantType(ident)
    return None


def _coerce(value: object, data_type: str, where: str) -> object:
    """A scalar checked against ``data_type``; a list, tuple or NumPy array element-wise
    (any length: the server checks the node's ArrayDimensions)."""
    if isinstance(value, list | tuple | np.ndarray):
        return coerce_array(value, data_type, (0,) * np.ndim(value), where)
    return coerce_value(value, data_type, where)


class OpcUaClientSession:
    """A supervised client session: reads, writes, subscriptions, method calls."""

    def __init__(self, config: OpcUaClientConfig) -> None:
        self._config = config
        self._state = OpcUaSessionState.NEW
        self._client: Client | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._connected = asyncio.Event()
        self._nodes: dict[NodeAddress, ua.NodeId] = {}
        self._variant_types: dict[ua.NodeId, ua.VariantType | None] = {}
        self._method_inputs: dict[ua.NodeId, tuple[ua.VariantType | None, ...]] = {}
        self._namespaces: list[str] | None = None
        self._subscriptions: list[OpcUaSubscription] = []
        self._names = itertools.count(1)
        self._connects = 0
        self._losses = 0
        self._reconnect_attempts = 0
        self._reads = 0
        self._writes = 0
        self._calls = 0

    # -- lifecycle ----------------------------------------------------------------

    @property
    def state(self) -> OpcUaSessionState:
        """Where the session is now."""
        return self._state

    @property
    def config(self) -> OpcUaClientConfig:
        """The configuration the session was made with."""
        return self._config

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect (deadline ``connect_timeout_s``); raise the mapped error on failure."""
        if self._state is not OpcUaSessionState.NEW:
            raise DriverError(
                f"OpcUaClientSession is one-shot; open() in state {self._state.value}"
            )
        self._state = OpcUaSessionState.CONNECTING
        try:
            self._client = await self._connect_client()
        except BaseException:
            self._state = OpcUaSessionState.CLOSED
            raise
        self._connects += 1
        self._state = OpcUaSessionState.CONNECTED
        self._connected.set()
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._task_group = group
        self._supervisor = group.create_task(self._supervise(), name="opcua-supervisor")
        _log.info("opcua_session_opened", endpoint=self._config.endpoint)

    async def aclose(self) -> None:
        """Stop supervising, close subscriptions and the connection; idempotent."""
        if self._state in (OpcUaSessionState.CLOSING, OpcUaSessionState.CLOSED):
            return
        if self._state is OpcUaSessionState.NEW:
            self._state = OpcUaSessionState.CLOSED
            return
        self._state = OpcUaSessionState.CLOSING
        self._connected.clear()
        try:
            for sub in list(self._subscriptions):
                sub._close_from_session()
            self._subscriptions.clear()
            if self._supervisor is not None:
                self._supervisor.cancel()
            if self._task_group is not None:
                group, self._task_group = self._task_group, None
                await group.__aexit__(None, None, None)
        finally:
            client, self._client = self._client, None
            await self._dispose(client)
            self._state = OpcUaSessionState.CLOSED
            _log.info("opcua_session_closed", endpoint=self._config.endpoint)

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until the session is connected (again); DriverTimeout after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError as exc:
            raise DriverTimeout(f"not connected within {timeout_s} s") from exc
        if self._state is not OpcUaSessionState.CONNECTED:
            raise ConnectionLost(f"session is {self._state.value}")

    # -- connection management ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _boundary(self, seconds: float, context: str) -> AsyncIterator[None]:
        """Deadline + exception mapping + restoring cancellations asyncua swallowed."""
        task = asyncio.current_task()
        before = task.cancelling() if task is not None else 0
        try:
            async with asyncio.timeout(seconds):
                yield
                if task is not None and task.cancelling() > before:
                    raise asyncio.CancelledError
        except TimeoutError as exc:
            raise DriverTimeout(f"{context}: no answer within {seconds} s") from exc
        except DriverError:
            raise
        except Exception as exc:
            raise map_asyncua_error(exc, context) from exc

    async def _connect_client(self) -> Client:
        cfg = self._config
        client = Client(
            cfg.endpoint,
            timeout=cfg.request_timeout_s,
            watchdog_intervall=cfg.watchdog_interval_s,
            auto_reconnect=False,
        )
        client.application_uri = cfg.application_uri
        client.name = cfg.application_name
        client.description = cfg.application_name
        client.session_timeout = int(cfg.session_timeout_s * 1000)
        if cfg.username is not None and cfg.password is not None:
            client.set_user(cfg.username)
            client.set_password(cfg.password.get_secret_value())

        async def lost(exc: Exception) -> None:
            self._on_connection_lost(client, exc)

        client.connection_lost_callback = lost
        try:
            async with self._boundary(cfg.connect_timeout_s, f"connect {cfg.endpoint}"):
                await self._apply_security(client)
                await client.connect()
        except BaseException:
            await self._dispose(client)
            raise
        return client

    async def _apply_security(self, client: Client) -> None:
        sec = self._config.security
        if sec.policy is SecurityPolicy.NONE:
            return
        cert, key, server_cert = await asyncio.to_thread(
            _read_security_files,
            (sec.certificate_path, sec.private_key_path, sec.server_certificate_path),
        )
        assert cert is not None  # guaranteed by OpcUaSecurityConfig
        assert key is not None
        await client.set_security(
            _POLICIES[sec.policy],
            certificate=uacrypto.CertProperties(cert, extension="pem"),
            private_key=uacrypto.CertProperties(key, extension="pem"),
            server_certificate=(
                uacrypto.CertProperties(server_cert, extension="pem")
                if server_cert is not None
                else None
            ),
            mode=_MODES[sec.mode],
        )

    async def _dispose(self, client: Client | None) -> None:
        """Disconnect an asyncua client under the close deadline, ignoring its failures."""
        if client is None:
            return
        client.connection_lost_callback = None
        try:
            async with self._boundary(self._config.close_timeout_s, "disconnect"):
                await client.disconnect()
        except DriverError as exc:
            _log.debug("opcua_disconnect_failed", error=str(exc))

    def _on_connection_lost(self, client: Client, exc: Exception) -> None:
        if client is self._client and self._state is OpcUaSessionState.CONNECTED:
            _log.warning("opcua_connection_lost", endpoint=self._config.endpoint, error=repr(exc))
            self._lost.set()

    def _mark_lost(self, client: Client) -> None:
        if client is self._client and self._state is OpcUaSessionState.CONNECTED:
            self._lost.set()

    async def _supervise(self) -> None:
        """Wait for a loss; report the gap; reconnect with backoff; re-subscribe."""
        policy = self._config.reconnect
        while True:
            await self._lost.wait()
            self._losses += 1
            self._connected.clear()
            for sub in self._subscriptions:
                sub._report_gap()
            old, self._client = self._client, None
            if not policy.enabled:
                self._state = OpcUaSessionState.DISCONNECTED
                await self._dispose(old)
                return
            self._state = OpcUaSessionState.RECONNECTING
            await self._dispose(old)
            delay = policy.initial_delay_s
            while True:
                self._lost.clear()
                self._reconnect_attempts += 1
                try:
                    await self._reconnect_once()
                    break
                except DriverError as exc:
                    _log.info(
                        "opcua_reconnect_failed",
                        endpoint=self._config.endpoint,
                        error=str(exc),
                        retry_in_s=delay,
                    )
                    client, self._client = self._client, None
                    await self._dispose(client)
                await asyncio.sleep(delay)
                delay = min(delay * policy.multiplier, policy.max_delay_s)
            self._connects += 1
            self._state = OpcUaSessionState.CONNECTED
            self._connected.set()
            _log.info("opcua_reconnected", endpoint=self._config.endpoint, losses=self._losses)

    async def _reconnect_once(self) -> None:
        self._nodes.clear()
        self._variant_types.clear()
        self._method_inputs.clear()
        self._namespaces = None
        client = await self._connect_client()
        self._client = client
        for sub in list(self._subscriptions):
            async with self._boundary(self._config.request_timeout_s, f"resubscribe {sub.name}"):
                node_ids = await self._resolve(client, sub.addresses)
                await sub._activate(client, node_ids, first=False)

    def _require_client(self, context: str) -> Client:
        if self._state is not OpcUaSessionState.CONNECTED or self._client is None:
            raise ConnectionLost(f"{context}: session is {self._state.value}")
        return self._client

    @contextlib.asynccontextmanager
    async def _operation(self, context: str) -> AsyncIterator[Client]:
        client = self._require_client(context)
        try:
            async with self._boundary(self._config.request_timeout_s, context):
                yield client
        except ConnectionLost:
            self._mark_lost(client)
            raise

    # -- addressing ---------------------------------------------------------------------

    def _parse(self, addresses: Iterable[NodeAddress | str]) -> list[NodeAddress]:
        return [
            parse_address(a, default_namespace=self._config.default_namespace)
            if isinstance(a, str)
            else a
            for a in addresses
        ]

    async def _namespace_index(self, client: Client, uri: str) -> int:
        if self._namespaces is None:
            self._namespaces = list(await client.get_namespace_array())
        try:
            return self._namespaces.index(uri)
        except ValueError:
            raise DriverConfigError(f"server has no namespace {uri!r}") from None

    async def _to_node_id(self, client: Client, address: NodeIdAddress) -> ua.NodeId:
        namespace = address.namespace_index
        if address.namespace_uri is not None:
            namespace = await self._namespace_index(client, address.namespace_uri)
        ident = address.identifier
        if address.kind in (NodeIdKind.NUMERIC, NodeIdKind.STRING):
            assert isinstance(ident, int | str)
            return node_id(ident, namespace)
        text = str(address).split(";", 1)[-1] if "ns" in str(address) else str(address)
        return ua.NodeId.from_string(f"ns={namespace};{text}")

    async def _resolve(self, client: Client, addresses: Sequence[NodeAddress]) -> list[ua.NodeId]:
        """NodeIds for addresses: NodeIds directly, browse paths in one translate call."""
        paths = [a for a in dict.fromkeys(addresses) if isinstance(a, BrowsePath)]
        paths = [p for p in paths if p not in self._nodes]
        if paths:
            requests = []
            for path in paths:
                browse = ua.BrowsePath()
                browse.StartingNode = node_id(_ROOT_FOLDER)
                relative = ua.RelativePath()
                relative.Elements = [
                    path_element(_HIERARCHICAL_REFERENCES, el.name, el.namespace_index)
                    for el in path.elements
                ]
                browse.RelativePath = relative
                requests.append(browse)
            results = await client.uaclient.translate_browsepaths_to_nodeids(requests)
            for path, result in zip(paths, results, strict=True):
                code = int(result.StatusCode.value)
                if code & 0x80000000 or not result.Targets:
                    raise error_for_status(code or 0x806F0000, f"resolve browse path {path}")
                self._nodes[path] = result.Targets[0].TargetId
        resolved: list[ua.NodeId] = []
        for address in addresses:
            if address not in self._nodes:
                assert isinstance(address, NodeIdAddress)
                self._nodes[address] = await self._to_node_id(client, address)
            resolved.append(self._nodes[address])
        return resolved

    async def resolve(self, addresses: Sequence[NodeAddress | str]) -> list[str]:
        """The NodeId strings the addresses resolve to (cached until reconnect)."""
        parsed = self._parse(addresses)
        async with self._operation("resolve") as client:
            node_ids = await self._resolve(client, parsed)
        return [n.to_string() for n in node_ids]

    # -- reads and writes ------------------------------------------------------------------

    async def read(self, addresses: Sequence[NodeAddress | str]) -> list[DataValueResult]:
        """Read the values of many nodes in one request; quality per item, in order."""
        parsed = self._parse(addresses)
        async with self._operation(f"read {len(parsed)} nodes") as client:
            node_ids = await self._resolve(client, parsed)
            values = await client.uaclient.read_attributes(node_ids, AttributeIds.Value)
        self._reads += len(parsed)
        return [DataValueResult.from_data_value(a, v) for a, v in zip(parsed, values, strict=True)]

    async def read_value(self, address: NodeAddress | str) -> object:
        """Read one value; a Bad quality raises the mapped error."""
        (result,) = await self.read([address])
        if result.quality.bad:
            raise item_error(result.quality.status_code, f"read {result.address}")
        return result.value

    async def _variant_types_for(
        self, client: Client, node_ids: Sequence[ua.NodeId]
    ) -> list[ua.VariantType | None]:
        unknown = [n for n in dict.fromkeys(node_ids) if n not in self._variant_types]
        if unknown:
            types = await client.uaclient.read_attributes(unknown, AttributeIds.DataType)
            for nid, dv in zip(unknown, types, strict=True):
                value = dv.Value.Value if dv.Value is not None else None
                self._variant_types[nid] = (
                    _variant_type_of(value) if isinstance(value, ua.NodeId) else None
                )
        return [self._variant_types[n] for n in node_ids]

    async def write(
        self,
        values: Mapping[NodeAddress | str, object] | Sequence[tuple[NodeAddress | str, object]],
        *,
        check: bool = True,
    ) -> list[Quality]:
        """Write many values in one request, typed by each node's DataType.

        Returns the per-item status; with ``check`` (default) the first Bad status
        raises (ProtocolError/SecurityError subclass carrying the status code).
        """
        pairs = list(values.items()) if isinstance(values, Mapping) else list(values)
        parsed = self._parse(a for a, _ in pairs)
        async with self._operation(f"write {len(parsed)} nodes") as client:
            node_ids = await self._resolve(client, parsed)
            types = await self._variant_types_for(client, node_ids)
            data_values = []
            for address, (_, value), vtype in zip(parsed, pairs, types, strict=True):
                if vtype is not None and vtype.name not in ("Variant", "ExtensionObject"):
                    value = _coerce(value, vtype.name, f"write {address}")
                data_values.append(data_value(variant(value, vtype)))
            statuses = await client.uaclient.write_attributes(
                node_ids, data_values, AttributeIds.Value
            )
        self._writes += len(parsed)
        qualities = [Quality.from_code(int(s.value)) for s in statuses]
        if check:
            for address, quality in zip(parsed, qualities, strict=True):
                if quality.bad:
                    raise item_error(quality.status_code, f"write {address}")
        return qualities

    # -- methods ------------------------------------------------------------------------------

    async def _input_types(
        self, client: Client, method_id: ua.NodeId
    ) -> tuple[ua.VariantType | None, ...]:
        if method_id in self._method_inputs:
            return self._method_inputs[method_id]
        browse = ua.BrowsePath()
        browse.StartingNode = method_id
        hop = path_element(_HAS_PROPERTY, "InputArguments", 0)
        browse.RelativePath = ua.RelativePath(Elements=[hop])
        (found,) = await client.uaclient.translate_browsepaths_to_nodeids([browse])
        types: tuple[ua.VariantType | None, ...] = ()
        if found.StatusCode.is_good() and found.Targets:
            (dv,) = await client.uaclient.read_attributes(
                [found.Targets[0].TargetId], AttributeIds.Value
            )
            arguments = dv.Value.Value if dv.Value is not None else None
            if isinstance(arguments, list):
                types = tuple(
                    _variant_type_of(arg.DataType) if isinstance(arg, ua.Argument) else None
                    for arg in arguments
                )
        self._method_inputs[method_id] = types
        return types

    async def call_method(
        self,
        method: NodeAddress | str,
        *arguments: object,
        object_address: NodeAddress | str | None = None,
    ) -> list[object]:
        """Call a method; the object defaults to the method's parent in its browse path."""
        (method_address,) = self._parse([method])
        if object_address is not None:
            (owner,) = self._parse([object_address])
        elif isinstance(method_address, BrowsePath):
            owner = method_address.parent
        else:
            raise DriverConfigError(
                f"call {method_address}: a method given by NodeId needs object_address"
            )
        async with self._operation(f"call {method_address}") as client:
            object_id, method_id = await self._resolve(client, [owner, method_address])
            input_types = await self._input_types(client, method_id)
            variants = []
            for index, value in enumerate(arguments):
                vtype = input_types[index] if index < len(input_types) else None
                if vtype is not None:
                    value = _coerce(value, vtype.name, f"call {method_address} arg {index}")
                variants.append(variant(value, vtype))
            request = ua.CallMethodRequest()
            request.ObjectId = object_id
            request.MethodId = method_id
            request.InputArguments = variants
            (result,) = await client.uaclient.call([request])
        self._calls += 1
        code = int(result.StatusCode.value)
        if code & 0x80000000:
            raise item_error(code, f"call {method_address}")
        return [v.Value for v in result.OutputArguments or []]

    # -- subscriptions --------------------------------------------------------------------------

    async def subscribe(
        self,
        addresses: Sequence[NodeAddress | str],
        config: OpcUaSubscriptionConfig | None = None,
    ) -> OpcUaSubscription:
        """Monitor nodes for data changes; re-created after every reconnect."""
        parsed = self._parse(addresses)
        if not parsed:
            raise DriverConfigError("subscribe needs at least one address")
        sub = OpcUaSubscription(
            parsed,
            config or OpcUaSubscriptionConfig(),
            f"sub{next(self._names)}",
            self._forget,
        )
        try:
            async with self._operation(f"subscribe {len(parsed)} nodes") as client:
                node_ids = await self._resolve(client, parsed)
                await sub._activate(client, node_ids, first=True)
        except BaseException:
            await sub.aclose()
            raise
        self._subscriptions.append(sub)
        return sub

    def _forget(self, sub: OpcUaSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)

    def statistics(self) -> OpcUaSessionStatistics:
        """Counters since open, including every live subscription's queue."""
        return OpcUaSessionStatistics(
            state=self._state,
            connects=self._connects,
            connection_losses=self._losses,
            reconnect_attempts=self._reconnect_attempts,
            reads=self._reads,
            writes=self._writes,
            method_calls=self._calls,
            cached_nodes=len(self._nodes),
            subscriptions=tuple(s.statistics() for s in self._subscriptions),
        )
