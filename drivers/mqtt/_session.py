"""One MQTT connection: a paho client driven by the asyncio event loop.

paho's blocking part (TCP connect and TLS handshake) runs once in the owner's worker thread; then
the socket is handed to the event loop (`add_reader`/`add_writer` calling `loop_read`/`loop_write`,
a one-second tick calling `loop_misc` for keepalive). Every paho callback therefore runs on the
event-loop thread. A session is never reused: a reconnect builds a fresh paho client, so paho's
in-memory retry queue never resends behind our back (the store does that, in order).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from drivers.errors import (
    ConnectionLost,
    DriverConfigError,
    DriverError,
    DriverTimeout,
    ProtocolError,
    SecurityError,
)
from drivers.mqtt.config import MqttClientConfig
from drivers.mqtt.subscription import ReceivedMessage

__all__ = ["Delivery", "PahoSession", "retrieve_outcome", "submit_connect"]

_log = structlog.get_logger(__name__)

# CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1 return codes 4 and 5 onto 134 and 135)
_CREDENTIAL_REASONS = frozenset({134, 135, 138, 140})


@dataclass(frozen=True, slots=True)
class Delivery:
    """A sent message; `acked` completes at PUBACK (QoS 1), or at write for QoS 0."""

    mid: int
    acked: asyncio.Future[None]


def retrieve_outcome(future: asyncio.Future[Any]) -> None:
    # mark the outcome as seen: a lost connection fails many futures nobody may await
    if not future.cancelled():
        future.exception()


class _TrackingSSLContext(ssl.SSLContext):
    """Remembers the socket it wrapped: paho drops it unclosed when the handshake fails."""

    wrapped: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # signature of the base
        wrapped = super().wrap_socket(*args, **kwargs)
        self.wrapped = wrapped
        return wrapped


def _ssl_context(config: MqttClientConfig) -> _TrackingSSLContext:
    tls = config.tls
    assert tls is not None
    context = _TrackingSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.ca_file is not None:
            context.load_verify_locations(cafile=str(tls.ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if tls.cert_file is not None and tls.key_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except FileNotFoundError as exc:
        raise DriverConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}") from exc
    except ssl.SSLError as exc:
        raise DriverConfigError(f"tls: invalid certificate or key: {exc}") from exc
    context.check_hostname = tls.check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class PahoSession:
    """Drives one paho client on the running event loop, for one connection only."""

    def __init__(
        self,
        config: MqttClientConfig,
        client_id: str,
        on_message: Callable[[ReceivedMessage], None],
        on_settled: Callable[[bool], None] | None = None,
    ) -> None:
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._on_message_cb = on_message
        self._on_settled = on_settled
        """Called at once (no callback round trip) when a QoS 1/2 publish leaves the in-flight
        set: True at its acknowledgement, False when rejected or the connection is lost."""
        self.ended = asyncio.Event()
        self.end_reason: DriverError | None = None
        self._connack: asyncio.Future[None] = self._loop.create_future()
        self._connack.add_done_callback(retrieve_outcome)
        self._inflight: dict[int, asyncio.Future[None]] = {}
        self._subacks: dict[int, asyncio.Future[None]] = {}
        protocol = paho.MQTTv5 if config.protocol == "5" else paho.MQTTv311
        kwargs: dict[str, Any] = {}
        if protocol == paho.MQTTv311:
            kwargs["clean_session"] = config.clean_session
        self._paho = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=False,
            **kwargs,
        )
        # MqttClient's window already bounds what is in flight; a paho limit as well would
        # make paho rescan every held message at each PUBACK (O(window) per ack)
        self._paho.max_inflight_messages_set(0)
        self._paho.max_queued_messages_set(0)  # our in-flight window bounds what paho holds
        self._paho.connect_timeout = config.connect_timeout_s
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            self._paho.username_pw_set(config.username, password)
        if config.will is not None:
            will = config.will
            self._paho.will_set(will.topic, will.payload, will.qos, will.retain)
        self._paho.on_connect = self._on_connect
        self._paho.on_disconnect = self._on_disconnect
        self._paho.on_publish = self._on_publish
        self._paho.on_subscribe = self._on_subscribe
        self._paho.on_message = self._on_paho_message
        self._paho.on_log = self._on_log
        self._tls_failure: str | None = None
        self._sock: Any = None
        self._session_present = False

    # ---- connection -------------------------------------------------------------------------

    def connect_blocking(self) -> None:
        """TCP connect, TLS handshake and CONNECT write; runs in the owner's worker thread."""
        config = self._config
        context = _ssl_context(config) if config.tls is not None else None
        if context is not None:
            self._paho.tls_set_context(context)
        try:
            self._connect_paho()
        except ConnectionLost:
            if context is not None and self._tls_failure is None:
                self._tls_failure = self._probe_tls_refusal(context)
            if context is not None and context.wrapped is not None:
                context.wrapped.close()
            if self._tls_failure is not None:
                raise SecurityError(
                    f"TLS session with {config.host}:{config.port} refused: {self._tls_failure}"
                ) from None
            raise
        except BaseException:
            if context is not None and context.wrapped is not None:
                context.wrapped.close()
            raise

    def _probe_tls_refusal(self, context: ssl.SSLContext) -> str | None:
        """Why a TLS broker dropped us before CONNACK, if it was a TLS alert.

        With TLS 1.3 the broker judges the client certificate after the handshake; its alert can
        arrive after paho's CONNECT write already failed, so paho never reads it. A second,
        bounded connection reads it.
        """
        config = self._config
        hostname = config.host if context.check_hostname else None
        try:
            with (
                socket.create_connection(
                    (config.host, config.port), timeout=config.connect_timeout_s
                ) as raw,
                context.wrap_socket(raw, server_hostname=hostname) as tls,
            ):
                tls.settimeout(1.0)
                tls.recv(1)
        except ssl.SSLError as exc:
            return str(exc)
        except OSError:
            return None
        return None

    def _connect_paho(self) -> None:
        config = self._config
        connect_properties: Properties | None = None
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if config.protocol == "5":
            clean_start = config.clean_session
            connect_properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves Properties.__init__ unannotated
            connect_properties.SessionExpiryInterval = config.session_expiry_s
        try:
            rc = self._paho.connect(
                config.host,
                config.port,
                keepalive=config.keepalive_s,
                clean_start=clean_start,
                properties=connect_properties,
            )
        except ssl.SSLCertVerificationError as exc:
            raise SecurityError(
                f"broker certificate rejected at {config.host}:{config.port}: {exc.verify_message}"
            ) from exc
        except ssl.SSLError as exc:
            raise SecurityError(
                f"TLS handshake with {config.host}:{config.port} failed: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise DriverTimeout(
                f"connect to {config.host}:{config.port} timed out "
                f"after {config.connect_timeout_s} s"
            ) from exc
        except OSError as exc:
            raise ConnectionLost(
                f"cannot reach broker at {config.host}:{config.port}: {exc}"
            ) from exc
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            if self._tls_failure is not None:
                raise SecurityError(
                    f"TLS session with {config.host}:{config.port} refused: {self._tls_failure}"
                )
            raise ConnectionLost(f"connect to {config.host}:{config.port}: {paho.error_string(rc)}")

    def discard_blocking(self) -> None:
        """Close a socket the loop never adopted (connect finished after we gave up on it)."""
        sock = self._paho.socket()
        if sock is not None:
            sock.close()

    def adopt(self) -> None:
        """Hand the connected socket to the event loop (loop thread, after `connect_blocking`)."""
        sock = self._paho.socket()
        if sock is None:
            raise ConnectionLost("socket closed during connect")
        self._sock = sock
        # small MQTT packets (PUBACKs, QoS 1 publishes) must not wait for Nagle's timer:
        # without this a write-write-read exchange stalls ~40 ms on Linux
        setsockopt = getattr(sock, "setsockopt", None)  # paho types it as SocketLike
        if setsockopt is not None:
            with contextlib.suppress(OSError):
                setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._paho.on_socket_close = self._on_socket_close
        self._paho.on_socket_register_write = self._on_register_write
        self._paho.on_socket_unregister_write = self._on_unregister_write
        self._loop.add_reader(sock, self._on_readable)
        if self._paho.want_write():
            self._loop.add_writer(sock, self._on_writable)

    async def wait_connack(self) -> bool:
        """Wait for CONNACK; returns the session-present flag or raises the mapped refusal."""
        try:
            async with asyncio.timeout(self._config.connect_timeout_s):
                await asyncio.wait([self._connack])
        except TimeoutError as exc:
            raise DriverTimeout(
                f"no CONNACK from {self._config.host}:{self._config.port} "
                f"within {self._config.connect_timeout_s} s"
            ) from exc
        self._connack.result()
        return self._session_present

    async def tick(self) -> None:
        """Keepalive and timeouts until the session ends."""
        while not self.ended.is_set():
            try:
                async with asyncio.timeout(1.0):
                    await self.ended.wait()
            except TimeoutError:
                self._paho.loop_misc()

    async def disconnect(self) -> None:
        """Polite DISCONNECT (no will), then close; abort if the broker does not let go."""
        if not self.ended.is_set() and self._sock is not None:
            self._paho.disconnect()
            try:
                async with asyncio.timeout(self._config.close_timeout_s):
                    await self.ended.wait()
            except TimeoutError:
                _log.warning("mqtt_disconnect_timed_out", host=self._config.host)
        self.abort()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT (the broker then publishes the will)."""
        sock = self._sock
        if sock is not None:
            self._sock = None
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            sock.close()
        self._end(ConnectionLost("connection closed by client"))

    # ---- operations ---------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        user_properties: Iterable[tuple[str, str]] = (),
    ) -> Delivery:
        if self.ended.is_set():
            raise ConnectionLost("not connected")
        properties: Properties | None = None
        pairs = list(user_properties)
        if pairs and self._config.protocol == "5":
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho leaves Properties.__init__ unannotated
            properties.UserProperty = pairs
        try:
            info = self._paho.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except ValueError as exc:
            raise DriverConfigError(f"cannot publish to {topic!r}: {exc}") from exc
        # a failed outcome is marked retrieved where it is set (`_fail`), not by a done callback
        # on every message: nobody may await the futures of a lost connection
        acked: asyncio.Future[None] = self._loop.create_future()
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionLost(f"publish to {topic!r}: {paho.error_string(info.rc)}")
        if qos == 0:
            acked.set_result(None)
        else:
            self._inflight[info.mid] = acked
        return Delivery(mid=info.mid, acked=acked)

    def subscribe(self, topic_filter: str, qos: int) -> asyncio.Future[None]:
        if self.ended.is_set():
            raise ConnectionLost("not connected")
        rc, mid = self._paho.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"subscribe to {topic_filter!r}: {paho.error_string(rc)}")
        suback: asyncio.Future[None] = self._loop.create_future()
        suback.add_done_callback(retrieve_outcome)
        self._subacks[mid] = suback
        return suback

    def unsubscribe(self, topic_filter: str) -> None:
        if not self.ended.is_set():
            self._paho.unsubscribe(topic_filter)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # ---- event-loop socket driving ------------------------------------------------------------

    def _on_readable(self) -> None:
        self._paho.loop_read()
        sock = self._paho.socket()
        # TLS may hold decrypted bytes the socket no longer signals as readable
        while isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
            self._paho.loop_read()
            sock = self._paho.socket()

    def _on_writable(self) -> None:
        self._paho.loop_write()

    def _on_register_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        if sock is self._sock:
            self._loop.add_writer(sock, self._on_writable)

    def _on_unregister_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        if sock is self._sock:
            self._sock = None

    # ---- paho callbacks (event-loop thread) ---------------------------------------------------

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self._connack.done():
            return
        self._session_present = bool(flags.session_present)
        if not reason.is_failure:
            self._connack.set_result(None)
            # TLS failures matter only until CONNACK; paho formats a log line for every packet
            # while a log callback is set
            self._paho.on_log = None
            return
        where = f"{self._config.host}:{self._config.port}"
        error: DriverError
        if reason.value in _CREDENTIAL_REASONS:
            error = SecurityError(f"broker at {where} refused the connection: {reason}")
        else:
            error = ConnectionLost(f"broker at {where} refused the connection: {reason}")
        self._connack.set_exception(error)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._end(ConnectionLost(f"connection to {self._config.host} lost: {reason}"))

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        acked = self._inflight.pop(mid, None)
        if acked is None:
            return
        failed = reason.is_failure
        if self._on_settled is not None:
            self._on_settled(not failed)
        if acked.done():
            return
        if failed:
            _fail(acked, ProtocolError(f"broker rejected message {mid}: {reason}"))
        else:
            acked.set_result(None)

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        suback = self._subacks.pop(mid, None)
        if suback is None or suback.done():
            return
        failed = [str(reason) for reason in reasons if reason.is_failure]
        if failed:
            suback.set_exception(ProtocolError(f"subscription refused: {', '.join(failed)}"))
        else:
            suback.set_result(None)

    def _on_paho_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        user_properties: tuple[tuple[str, str], ...] = ()
        props = getattr(msg, "properties", None)
        if props is not None and hasattr(props, "UserProperty"):
            user_properties = tuple((str(k), str(v)) for k, v in props.UserProperty)
        self._on_message_cb(
            ReceivedMessage(
                topic=msg.topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                retain=bool(msg.retain),
                user_properties=user_properties,
            )
        )

    def _on_log(self, _client: paho.Client, _userdata: Any, level: int, text: str) -> None:
        # paho reports socket errors only here; a TLS alert (e.g. a client certificate the
        # broker refuses, sent after a TLS 1.3 handshake) must become a SecurityError
        if level == paho.MQTT_LOG_ERR and "[SSL" in text:
            self._tls_failure = text

    def _end(self, reason: DriverError) -> None:
        if self.ended.is_set():
            return
        if self._tls_failure is not None and not self._connack.done():
            where = f"{self._config.host}:{self._config.port}"
            reason = SecurityError(f"TLS session with {where} refused: {self._tls_failure}")
        self.end_reason = reason
        self.ended.set()
        if not self._connack.done():
            self._connack.set_exception(reason)
        if self._on_settled is not None:
            for _ in self._inflight:
                self._on_settled(False)
        for pending in [*self._inflight.values(), *self._subacks.values()]:
            if not pending.done():
                _fail(pending, ConnectionLost(str(reason)))
        self._inflight.clear()
        self._subacks.clear()


def _fail(future: asyncio.Future[None], error: DriverError) -> None:
    future.set_exception(error)
    future.exception()  # retrieved: no "exception was never retrieved" if nobody awaits it


def submit_connect(
    executor: concurrent.futures.ThreadPoolExecutor, session: PahoSession
) -> concurrent.futures.Future[None]:
    """Start the blocking connect in the owner's worker thread."""
    return executor.submit(session.connect_blocking)
