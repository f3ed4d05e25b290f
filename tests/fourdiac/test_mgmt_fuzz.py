"""Fuzzing the live management server: random bytes, cut frames, hostile XML.

The server runs in its own thread and event loop for the whole module; each
example is a plain blocking socket that sends, half-closes and reads to EOF. The
server must answer every complete request with a well-formed `<Response>` or close
the connection, and must keep serving afterwards: never crash, never hang.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from xml.sax.saxutils import quoteattr

import pytest
from defusedxml import ElementTree as SafeET
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mgmt_testkit import Served, serve_device

from testbed.fourdiac.mgmt_frames import FrameReader, encode_frame, encode_request
from testbed.fourdiac.mgmt_server import ServerSettings
from testbed.library import TypeLibrary

pytestmark = pytest.mark.timeout(300)

FUZZ = settings(max_examples=700, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class LiveServer:
    """A device and its management server on a loop in a thread owned by the fixture."""

    def __init__(self, library: TypeLibrary) -> None:
        self.library = library
        self.ready = threading.Event()
        self.served: Served | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mgmt-fuzz-server")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by the test through self.error
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = ServerSettings(port=0, request_deadline_s=0.5, idle_timeout_s=2.0,
                                max_connections=64)
        async with serve_device(self.library, config) as served:
            self.served = served
            self.ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        assert self.ready.wait(10), "fuzz server did not start"
        assert self.error is None, self.error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "fuzz server did not stop"

    @property
    def address(self) -> tuple[str, int]:
        assert self.served is not None
        return self.served.server.host, self.served.server.port

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None


@pytest.fixture(scope="module")
def live(library: TypeLibrary) -> Iterator[LiveServer]:
    server = LiveServer(library)
    server.start()
    yield server
    server.stop()
    assert server.error is None, server.error


def exchange(address: tuple[str, int], data: bytes, half_close: bool = True) -> list[str]:
    """Send `data`, optionally half-close, read to EOF; return the response frames."""
    with socket.create_connection(address, timeout=5) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first on a bad frame; then there is nothing to read
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    reader = FrameReader()
    frames = reader.feed(received)
    assert reader.at_boundary, f"server sent a partial frame: {received[-40:]!r}"
    for frame in frames:
        assert SafeET.fromstring(frame).tag == "Response"
    return frames


def still_serving(live: LiveServer) -> None:
    assert live.alive
    frames = exchange(live.address, encode_request(
        "", '<Request ID="ok" Action="QUERY"><FB Name="*" Type="*"/></Request>'))
    assert len(frames) == 1
    assert 'ID="ok"' in frames[0]
    assert "Reason" not in frames[0]


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(live: LiveServer, data: bytes) -> None:
    """Arbitrary bytes get responses or a close, never a hang or a crash."""
    exchange(live.address, data)
    assert live.alive


@FUZZ
@given(destination=st.text(max_size=40), xml=st.text(max_size=400),
       cut=st.integers(min_value=0, max_value=500))
def test_truncated_and_arbitrary_text_requests(live: LiveServer, destination: str, xml: str,
                                               cut: int) -> None:
    """Well-framed arbitrary text is answered; a request cut anywhere just closes."""
    data = encode_request(destination, xml)
    frames = exchange(live.address, data[:cut] if cut < len(data) else data)
    if cut >= len(data):
        assert len(frames) == 1
    assert live.alive


ACTIONS = st.sampled_from(["CREATE", "DELETE", "START", "STOP", "KILL", "RESET", "READ",
                           "WRITE", "QUERY", "create", "", "NOPE"])
NAMES = st.sampled_from(["RES", "F1", "F2", "START", "*", "", "A.B", "F1.CU", "F1.CV",
                         "START.COLD", "$e", "$er", "DINT#5", "T#1s", "'x'", "é&<"])
ELEMENTS = st.sampled_from(["FB", "Connection", "Watch", "Watches", "FBType", "DataType",
                            "AdapterType", "Other"])
ATTRS = st.sampled_from(["Name", "Type", "Source", "Destination", "force"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str]:
    """Plausible management requests built from the protocol's own vocabulary."""
    element = draw(ELEMENTS)
    attrs = " ".join(f"{a}={quoteattr(draw(NAMES))}"
                     for a in draw(st.lists(ATTRS, max_size=4, unique=True)))
    type_attr = draw(st.sampled_from(["E_CTU", "EMB_RES", "E_CYCLE", "NOPE", "*"]))
    if element == "FB" and "Type=" not in attrs:
        attrs += f' Type="{type_attr}"'
    body = draw(st.sampled_from([f"<{element} {attrs}/>", "", f"<{element}>"]))
    action = draw(ACTIONS)
    rid = draw(st.text(alphabet="0123456789abc", max_size=8))
    xml = f'<Request ID="{rid}" Action="{action}">{body}</Request>'
    return draw(st.sampled_from(["", "RES", "NOPE"])), xml


@FUZZ
@given(batch=st.lists(requests(), min_size=1, max_size=6))
def test_protocol_shaped_requests(live: LiveServer, batch: list[tuple[str, str]]) -> None:
    """Random but protocol-shaped requests each get exactly one response."""
    if not any(r.name == "RES" for r in _device(live).resources.values()):
        exchange(live.address, encode_request(
            "", '<Request ID="0" Action="CREATE"><FB Name="RES" Type="EMB_RES"/></Request>'))
    data = b"".join(encode_request(d, x) for d, x in batch)
    frames = exchange(live.address, data)
    kill_device = any('Action="KILL"' in x and d == "" and "<FB" not in x for d, x in batch)
    if not kill_device:
        assert len(frames) == len(batch)


def _device(live: LiveServer) -> object:
    assert live.served is not None
    return live.served.device


HOSTILE = [
    # billion laughs
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    '<Request ID="1" Action="WRITE"><Connection Source="&lol4;" Destination="F1.PV"/>'
    '</Request>',
    # external entity
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<Request ID="2" Action="WRITE"><Connection Source="&xxe;" Destination="F1.PV"/>'
    '</Request>',
    # external DTD
    '<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
    '<Request ID="3" Action="QUERY"/>',
    # parameter entity
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % pe SYSTEM "file:///etc/passwd"> %pe;]>'
    '<Request ID="4" Action="QUERY"/>',
    # deep nesting
    "<Request ID='5' Action='QUERY'>" + "<a>" * 5000 + "</a>" * 5000 + "</Request>",
]


@pytest.mark.parametrize("xml", HOSTILE)
def test_hostile_xml_is_refused(live: LiveServer, xml: str) -> None:
    """Entity expansion, external entities and DTDs are refused (INVALID_OBJECT), not expanded."""
    frames = exchange(live.address, encode_request("", xml))
    assert len(frames) == 1
    assert "root:" not in frames[0]
    if "<!DOCTYPE" in xml:
        assert 'Reason="INVALID_OBJECT"' in frames[0]
    still_serving(live)


def test_open_connection_without_eof_hits_deadline(live: LiveServer) -> None:
    """A half-sent frame with the socket left open is dropped at the request deadline."""
    frames = exchange(live.address, encode_frame("RES") + b"\x50\x00", half_close=False)
    assert frames == []
    still_serving(live)


def test_server_survives_the_fuzzing(live: LiveServer) -> None:
    """After every fuzz test above, the server still answers (runs last in this module)."""
    still_serving(live)
