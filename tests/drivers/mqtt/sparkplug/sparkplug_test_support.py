"""Test support for the Sparkplug tests: a mosquitto broker on a free port, a paho-mqtt
client implementing `SparkplugTransport`, and the Eclipse Tahu JS codec run by node."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.mqtt.sparkplug import OutgoingMessage

NODE_DIR = Path(__file__).parent / "node"
DEADLINE_S = 5.0


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_mosquitto(binary: str, workdir: Path) -> Iterator[int]:
    """Start mosquitto on a free loopback port (mosquitto 2 reads port 0 as a unix socket,
    so the port is taken from a bound probe socket and read back); yield the port."""
    for _attempt in range(3):
        port = _free_port()
        config = workdir / f"mosquitto-{port}.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        )
        log = (workdir / f"mosquitto-{port}.log").open("wb")
        proc = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                except OSError:
                    time.sleep(0.02)
                    continue
                yield port
                return
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    raise RuntimeError(f"mosquitto did not start; see logs in {workdir}")


class PahoTransport:
    """A paho-mqtt 2.x client as a `SparkplugTransport` (paho's network thread is owned
    here: started in `connect`, stopped in `close`/`kill_socket`)."""

    def __init__(self, port: int, client_id: str) -> None:
        self._port = port
        self._loop = asyncio.get_running_loop()
        self.messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        self.overflow = 0
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._lock = threading.Lock()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._client_id = client_id
        self._will: OutgoingMessage | None = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._configure()

    def _configure(self) -> None:
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish
        if self._will is not None:
            w = self._will
            self._client.will_set(w.topic, w.payload, w.qos, w.retain)

    # paho thread -> event loop
    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        def done() -> None:
            if not self._connected.done():
                self._connected.set_result(None)

        self._loop.call_soon_threadsafe(done)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        def put() -> None:
            try:
                self.messages.put_nowait((msg.topic, bytes(msg.payload)))
            except asyncio.QueueFull:
                self.overflow += 1

        self._loop.call_soon_threadsafe(put)

    def _ack(self, mid: int) -> None:
        def done() -> None:
            fut = self._acks.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

        self._loop.call_soon_threadsafe(done)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._ack(mid)

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._ack(mid)

    # SparkplugTransport
    def set_will(self, will: OutgoingMessage | None) -> None:
        self._will = will
        if will is None:
            self._client.will_clear()
        else:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)

    async def connect(self) -> None:
        self._connected = self._loop.create_future()
        await asyncio.to_thread(self._client.connect, "127.0.0.1", self._port, 30)
        self._client.loop_start()
        async with asyncio.timeout(DEADLINE_S):
            await self._connected

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._lock:  # mid is known only after publish() returns; paho acks may race
            info = self._client.publish(topic, payload, qos, retain)
            self._acks[info.mid] = fut
        if info.is_published():
            self._acks.pop(info.mid, None)
            return
        async with asyncio.timeout(DEADLINE_S):
            await fut

    async def subscribe(self, topic: str, qos: int) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            _rc, mid = self._client.subscribe(topic, qos)
            assert mid is not None
            self._acks[mid] = fut
        async with asyncio.timeout(DEADLINE_S):
            await fut

    async def receive(self, timeout_s: float = DEADLINE_S) -> tuple[str, bytes]:
        async with asyncio.timeout(timeout_s):
            return await self.messages.get()

    async def receive_matching(
        self, prefix: str, timeout_s: float = DEADLINE_S
    ) -> tuple[str, bytes]:
        """The next message whose topic starts with `prefix` (others are skipped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                topic, payload = await self.messages.get()
                if topic.startswith(prefix):
                    return topic, payload

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    async def kill_socket(self) -> None:
        """Drop the TCP connection without DISCONNECT, as a crash would (the broker then
        publishes the will)."""
        sock = self._client.socket()
        await asyncio.to_thread(self._client.loop_stop)
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
        # a fresh client for the next session (reinitialise closes paho's sockets)
        self._client.reinitialise(client_id=self._client_id)
        self._configure()


def tahu_available() -> str | None:
    """None when node and npm are usable, else the reason to skip."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not installed: Tahu sparkplug-payload interop cannot run"
    return None


def npm_ci() -> str | None:
    """Run `npm ci` in the node folder; None on success, else the reason to skip."""
    try:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm ci failed in {NODE_DIR}: {exc}"
    if result.returncode != 0:
        return f"npm ci failed in {NODE_DIR}: {result.stderr.strip()[-400:]}"
    return None


def tahu(request: dict[str, Any]) -> Any:
    """Run one request through Tahu's JS codec (see node/tahu_codec.js)."""
    result = subprocess.run(
        ["node", "tahu_codec.js"],
        cwd=NODE_DIR,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"Tahu codec failed: {result.stderr}")
    return json.loads(result.stdout)


def tahu_decode(payload: bytes) -> Any:
    """Decode our bytes with Tahu's decoder."""
    return tahu({"op": "decode", "payload": base64.b64encode(payload).decode()})


def tahu_encode(payload: dict[str, Any]) -> bytes:
    """Encode a Tahu-style payload object with Tahu's encoder."""
    return base64.b64decode(tahu({"op": "encode", "payload": payload})["payload"])


def long(value: int, *, unsigned: bool = True) -> dict[str, Any]:
    """A tagged 64-bit integer for tahu_codec.js."""
    return {"$long": str(value), "unsigned": unsigned}
