"""``OpcUaServer``: an asyncua server exposing a declarative address space (simulated PLCs).

It knows nothing of plants: it builds folders, objects, variables (typed, with
EngineeringUnits/EURange properties and writable flags) and methods (Python async
callbacks) from an ``AddressSpaceSpec``, lets Python update many values at once
through asyncua's direct attribute path, and applies the configured security
(endpoints, server certificate, client trust list, users).

asyncua's own background tasks (clock, session watchdogs) belong to the asyncua
server object and end in its ``stop()``; this wrapper adds none.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from cryptography import x509

from drivers.errors import DriverConfigError, DriverError
from drivers.opcua._ua import AttributeIds, ObjectIds, StatusCodes, data_value, node_id, status_code
from drivers.opcua.address_space import (
    AddressSpaceSpec,
    ArgumentSpec,
    MethodSpec,
    ObjectSpec,
    VariableSpec,
)
from drivers.opcua.config import OpcUaServerConfig, SecurityMode, SecurityPolicy
from drivers.opcua.server_security import ClientTrustList, PasswordUserManager
from drivers.opcua.values import coerce_array, coerce_value, default_array, default_value

__all__ = ["MethodHandler", "OpcUaServer", "OpcUaServerState", "OpcUaServerStatistics"]

_log = structlog.get_logger(__name__)

MethodHandler = Callable[..., Awaitable[Sequence[object]]]
"""``async def handler(*inputs) -> outputs``; inputs/outputs follow the MethodSpec order.
Raising ValueError/TypeError answers BadInvalidArgument, anything else BadInternalError."""

_EU_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

_POLICY_TYPES: dict[tuple[SecurityPolicy, SecurityMode], ua.SecurityPolicyType] = {
    (SecurityPolicy.NONE, SecurityMode.NONE): ua.SecurityPolicyType.NoSecurity,
    (
        SecurityPolicy.BASIC256SHA256,
        SecurityMode.SIGN,
    ): ua.SecurityPolicyType.Basic256Sha256_Sign,
    (
        SecurityPolicy.BASIC256SHA256,
        SecurityMode.SIGN_AND_ENCRYPT,
    ): ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    (
        SecurityPolicy.AES128_SHA256_RSAOAEP,
        SecurityMode.SIGN,
    ): ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    (
        SecurityPolicy.AES128_SHA256_RSAOAEP,
        SecurityMode.SIGN_AND_ENCRYPT,
    ): ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
}


class OpcUaServerState(enum.Enum):
    """Lifecycle of an ``OpcUaServer`` (one-shot)."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class OpcUaServerStatistics:
    """Counters of the Python-side traffic into the address space."""

    variables: int
    methods: int
    value_writes: int
    method_calls: int
    method_failures: int


@dataclass(frozen=True, slots=True)
class _Variable:
    node_id: ua.NodeId
    spec: VariableSpec
    variant_type: ua.VariantType


def _load_certificate(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _read_files(paths: Iterable[Path]) -> list[bytes]:
    return [path.read_bytes() for path in paths]


class OpcUaServer:
    """A one-shot OPC UA server for a declarative address space."""

    def __init__(
        self,
        config: OpcUaServerConfig,
        address_space: AddressSpaceSpec,
        *,
        method_handlers: Mapping[str, MethodHandler] | None = None,
    ) -> None:
        self._config = config
        self._spec = address_space
        self._handlers = dict(method_handlers or {})
        method_paths = {p for p, node in address_space.walk() if isinstance(node, MethodSpec)}
        unknown = sorted(set(self._handlers) - method_paths)
        if unknown:
            raise DriverConfigError(f"method handlers for unknown methods: {', '.join(unknown)}")
        missing = sorted(method_paths - set(self._handlers))
        if missing:
            raise DriverConfigError(f"methods without a handler: {', '.join(missing)}")
        self._state = OpcUaServerState.NEW
        self._server: Server | None = None
        self._namespace_index = 0
        self._port = 0
        self._variables: dict[str, _Variable] = {}
        self._value_writes = 0
        self._method_calls = 0
        self._method_failures = 0

    # -- lifecycle -------------------------------------------------------------

    @property
    def state(self) -> OpcUaServerState:
        """Where the server is in its lifecycle."""
        return self._state

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Build the address space and listen; the real port is then in ``port``."""
        if self._state is not OpcUaServerState.NEW:
            raise DriverError(
                f"OpcUaServer is one-shot; start() called in state {self._state.value}"
            )
        self._state = OpcUaServerState.STARTING
        try:
            await self._start()
        except BaseException:
            await self._stop_quietly()
            self._state = OpcUaServerState.STOPPED
            raise
        self._state = OpcUaServerState.RUNNING
        _log.info("opcua_server_started", endpoint=self.endpoint, variables=len(self._variables))

    async def _start(self) -> None:
        cfg = self._config
        sec = cfg.security
        users = {name: secret.get_secret_value() for name, secret in sec.users.items()}
        user_manager = PasswordUserManager(users, allow_anonymous=sec.allow_anonymous)
        server = Server(user_manager=user_manager)
        self._server = server
        await server.init()
        if not cfg.publish_current_time:
            server.disable_clock()
        server.set_endpoint(f"opc.tcp://{cfg.host}:{cfg.port}{cfg.path}")
        server.set_server_name(cfg.name)
        await server.set_application_uri(cfg.application_uri)
        server.set_security_policy([_POLICY_TYPES[pair] for pair in sec.endpoints])
        tokens: list[type] = [ua.UserNameIdentityToken] if users else []
        if sec.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if sec.certificate_path is not None and sec.private_key_path is not None:
            cert_pem, key_pem = await asyncio.to_thread(
                _read_files, (sec.certificate_path, sec.private_key_path)
            )
            await server.load_certificate(cert_pem, format="pem")
            await server.load_private_key(key_pem, format="pem")
        if sec.trusted_client_certificates:
            raw = await asyncio.to_thread(_read_files, sec.trusted_client_certificates)
            trust_list = ClientTrustList(_load_certificate(data) for data in raw)
            server.set_certificate_validator(trust_list.validate)
        elif any(policy is not SecurityPolicy.NONE for policy, _ in sec.endpoints):
            # secure endpoints with an empty trust list accept nobody's certificate
            server.set_certificate_validator(ClientTrustList(()).validate)
        self._namespace_index = await server.register_namespace(cfg.namespace_uri)
        await self._build(server.nodes.objects, "", self._spec.nodes)
        try:
            await server.start()
        except OSError as exc:
            raise DriverConfigError(
                f"OPC UA server cannot listen on {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        assert server.bserver is not None
        self._port = int(server.bserver.port)

    async def aclose(self) -> None:
        """Stop listening and drop every session; idempotent."""
        if self._state in (OpcUaServerState.STOPPING, OpcUaServerState.STOPPED):
            return
        if self._state is OpcUaServerState.NEW:
            self._state = OpcUaServerState.STOPPED
            return
        self._state = OpcUaServerState.STOPPING
        try:
            await self._stop_quietly()
        finally:
            self._state = OpcUaServerState.STOPPED
            _log.info("opcua_server_stopped", port=self._port)

    async def _stop_quietly(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        try:
            async with asyncio.timeout(5.0):
                await server.stop()
        except (TimeoutError, OSError, RuntimeError) as exc:
            _log.warning("opcua_server_stop_failed", error=repr(exc))

    # -- address space -----------------------------------------------------------

    def _node_id(self, path: str) -> ua.NodeId:
        return node_id(path.replace("/", "."), self._namespace_index)

    def _qualified(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self._namespace_index)

    async def _build(
        self,
        parent: Node,
        prefix: str,
        nodes: Sequence[ObjectSpec | VariableSpec | MethodSpec],
    ) -> None:
        for spec in nodes:
            path = f"{prefix}/{spec.name}" if prefix else spec.name
            if isinstance(spec, ObjectSpec):
                if spec.kind == "folder":
                    child = await parent.add_folder(self._node_id(path), self._qualified(spec.name))
                else:
                    child = await parent.add_object(self._node_id(path), self._qualified(spec.name))
                if spec.description:
                    await child.write_attribute(
                        AttributeIds.Description,
                        ua.DataValue(ua.Variant(ua.LocalizedText(spec.description))),
                    )
                await self._build(child, path, spec.children)
            elif isinstance(spec, VariableSpec):
                await self._add_variable(parent, path, spec)
            else:
                await self._add_method(parent, path, spec)

    async def _add_variable(self, parent: Node, path: str, spec: VariableSpec) -> None:
        variant_type = ua.VariantType[spec.data_type]
        where = f"variable {path}"
        if spec.dimensions:
            array_initial: object = spec.initial
            if array_initial is None:
                array_initial = default_array(spec.data_type, spec.dimensions)
            array = coerce_array(array_initial, spec.data_type, spec.dimensions, where)
            first = ua.Variant(array, variant_type)
        else:
            initial = spec.initial if spec.initial is not None else default_value(spec.data_type)
            first = ua.Variant(coerce_value(initial, spec.data_type, where), variant_type)
        node = await parent.add_variable(self._node_id(path), self._qualified(spec.name), first)
        if spec.dimensions:
            await node.write_value_rank(len(spec.dimensions))
            await node.write_attribute(
                AttributeIds.ArrayDimensions,
                ua.DataValue(ua.Variant(list(spec.dimensions), ua.VariantType.UInt32)),
            )
        if spec.writable:
            await node.set_writable(True)
        if spec.description:
            await node.write_attribute(
                AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(spec.description))),
            )
        if spec.engineering_units is not None:
            units = spec.engineering_units
            info = ua.EUInformation(
                NamespaceUri=_EU_NAMESPACE,
                UnitId=units.unit_id,
                DisplayName=ua.LocalizedText(units.display_name),
                Description=ua.LocalizedText(units.description),
            )
            await node.add_property(
                self._node_id(f"{path}/EngineeringUnits"),
                ua.QualifiedName("EngineeringUnits", 0),
                ua.Variant(info, ua.VariantType.ExtensionObject),
                datatype=node_id(ObjectIds.EUInformation),
            )
        if spec.eu_range is not None:
            low, high = spec.eu_range
            await node.add_property(
                self._node_id(f"{path}/EURange"),
                ua.QualifiedName("EURange", 0),
                ua.Variant(ua.Range(Low=low, High=high), ua.VariantType.ExtensionObject),
                datatype=node_id(ObjectIds.Range),
            )
        self._variables[path] = _Variable(node.nodeid, spec, variant_type)

    async def _add_method(self, parent: Node, path: str, spec: MethodSpec) -> None:
        handler = self._handlers[path]

        def argument(arg: ArgumentSpec) -> ua.Argument:
            result = ua.Argument()
            result.Name = arg.name
            result.DataType = node_id(int(getattr(ObjectIds, arg.data_type)))
            result.ValueRank = -1
            result.Description = ua.LocalizedText(arg.description)
            return result

        async def call(parent_id: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
            del parent_id
            self._method_calls += 1
            if len(args) != len(spec.inputs):
                self._method_failures += 1
                code = (
                    StatusCodes.BadArgumentsMissing
                    if len(args) < len(spec.inputs)
                    else StatusCodes.BadTooManyArguments
                )
                return status_code(code)
            try:
                inputs = [
                    coerce_value(
                        arg.Value, declared.data_type, f"method {path} input {declared.name}"
                    )
                    for arg, declared in zip(args, spec.inputs, strict=True)
                ]
                outputs = await handler(*inputs)
                if len(outputs) != len(spec.outputs):
                    raise RuntimeError(
                        f"handler returned {len(outputs)} outputs, {len(spec.outputs)} declared"
                    )
                return [
                    ua.Variant(
                        coerce_value(value, out.data_type, f"method {path} output {out.name}"),
                        ua.VariantType[out.data_type],
                    )
                    for value, out in zip(outputs, spec.outputs, strict=True)
                ]
            except (ValueError, TypeError) as exc:
                self._method_failures += 1
                _log.warning("opcua_method_rejected", path=path, error=str(exc))
                return status_code(StatusCodes.BadInvalidArgument)
            except Exception:
                self._method_failures += 1
                _log.exception("opcua_method_failed", path=path)
                return status_code(StatusCodes.BadInternalError)

        await parent.add_method(
            self._node_id(path),
            self._qualified(spec.name),
            call,
            [argument(a) for a in spec.inputs],
            [argument(a) for a in spec.outputs],
        )

    # -- addressing helpers for clients ------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port actually bound (meaningful once running)."""
        return self._port

    @property
    def endpoint(self) -> str:
        """The URL clients connect to."""
        return f"opc.tcp://{self._config.host}:{self._port}{self._config.path}"

    @property
    def namespace_index(self) -> int:
        """Index of ``namespace_uri`` in the server's namespace array."""
        return self._namespace_index

    def node_id(self, path: str) -> str:
        """The NodeId string of a node path, e.g. ``ns=2;s=Plant.Pump1.Speed``."""
        return f"ns={self._namespace_index};s={path.replace('/', '.')}"

    def browse_path(self, path: str) -> str:
        """The absolute browse path of a node path, e.g. ``/Objects/2:Plant/2:Speed``."""
        idx = self._namespace_index
        return "/Objects/" + "/".join(f"{idx}:{name}" for name in path.split("/"))

    # -- values ------------------------------------------------------------------------

    def _variable(self, path: str) -> _Variable:
        try:
            return self._variables[path]
        except KeyError:
            raise DriverConfigError(f"no variable {path!r} in the address space") from None

    def _running(self) -> Server:
        if self._state is not OpcUaServerState.RUNNING or self._server is None:
            raise DriverError(f"OpcUaServer is {self._state.value}, not running")
        return self._server

    async def write_values(
        self,
        values: Mapping[str, object],
        *,
        source_timestamp: datetime.datetime | None = None,
        status: str = "Good",
    ) -> None:
        """Set many variables at once (Python side, no access checks); notifies subscribers.

        A Bad ``status`` publishes the variables with that quality and no value, as
        OPC UA requires; use it to simulate a failed sensor.
        """
        server = self._running()
        code = getattr(StatusCodes, status, None)
        if not isinstance(code, int):
            raise DriverConfigError(f"unknown OPC UA status name {status!r}")
        stamp = source_timestamp or datetime.datetime.now(datetime.UTC)
        prepared: list[tuple[ua.NodeId, ua.DataValue]] = []
        for path, value in values.items():
            var = self._variable(path)
            spec = var.spec
            checked = (
                coerce_array(value, spec.data_type, spec.dimensions, f"variable {path}")
                if spec.dimensions
                else coerce_value(value, spec.data_type, f"variable {path}")
            )
            prepared.append(
                (
                    var.node_id,
                    data_value(
                        ua.Variant(checked, var.variant_type),
                        code=code,
                        source_timestamp=stamp,
                        server_timestamp=stamp,
                    ),
                )
            )
        for target, new_value in prepared:
            await server.write_attribute_value(target, new_value)
        self._value_writes += len(prepared)

    def read_value(self, path: str) -> object:
        """The current value of a variable (including what clients wrote)."""
        server = self._running()
        current = server.read_attribute_value(self._variable(path).node_id)
        return current.Value.Value if current.Value is not None else None

    def read_values(self, paths: Iterable[str]) -> list[object]:
        """Current values of several variables, in order."""
        return [self.read_value(path) for path in paths]

    def statistics(self) -> OpcUaServerStatistics:
        """Counters since start."""
        return OpcUaServerStatistics(
            variables=len(self._variables),
            methods=len(self._handlers),
            value_writes=self._value_writes,
            method_calls=self._method_calls,
            method_failures=self._method_failures,
        )
