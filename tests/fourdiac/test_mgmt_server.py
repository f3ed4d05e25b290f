"""The management server over a real loopback socket: deploy, monitor, force, query, faults."""

from __future__ import annotations

import asyncio

import pytest
from defusedxml import ElementTree as SafeET
from mgmt_testkit import client_for, serve_device, wait_until

from testbed.fourdiac.mgmt_client import ManagementClient
from testbed.fourdiac.mgmt_frames import encode_frame, encode_request, read_frame
from testbed.fourdiac.mgmt_server import ServerSettings, parse_address
from testbed.library import TypeLibrary

pytestmark = pytest.mark.timeout(30)

COUNTER_APP = [
    ("", '<Request ID="1" Action="CREATE"><FB Name="RES" Type="EMB_RES"/></Request>'),
    ("RES", '<Request ID="2" Action="CREATE"><FB Name="CYC" Type="E_CYCLE"/></Request>'),
    ("RES", '<Request ID="3" Action="WRITE"><Connection Source="T#5ms" '
            'Destination="CYC.DT"/></Request>'),
    ("RES", '<Request ID="4" Action="CREATE"><FB Name="CTR" Type="E_CTU"/></Request>'),
    ("RES", '<Request ID="5" Action="WRITE"><Connection Source="60000" '
            'Destination="CTR.PV"/></Request>'),
    ("RES", '<Request ID="6" Action="CREATE"><Connection Source="START.COLD" '
            'Destination="CYC.START"/></Request>'),
    ("RES", '<Request ID="7" Action="CREATE"><Connection Source="CYC.EO" '
            'Destination="CTR.CU"/></Request>'),
    ("RES", '<Request ID="8" Action="START"/>'),
]


async def deploy(client: ManagementClient, requests: list[tuple[str, str]]) -> None:
    for dest, xml in requests:
        reply = await client.request(dest, xml)
        assert reply.ok, (xml, reply.xml)


def cv(served: object) -> int:
    value: int = served.device.resources["RES"].fbs["CTR"].get("CV")  # type: ignore[attr-defined]
    return value


async def test_deploy_and_read_value(library: TypeLibrary) -> None:
    """A deployed counter runs; READ returns its CV in FORTE's long response."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP)
        await wait_until(lambda: cv(served) >= 3)
        reply = await client.command("RES", "READ", '<Connection Source="CTR.CV"/>')
        assert reply.ok
        conn = SafeET.fromstring(reply.xml).find("Connection")
        assert conn is not None
        assert conn.get("Source") == "CTR.CV"
        assert int(conn.get("Destination", "-1")) >= 3


async def test_response_echoes_id_and_reasons(library: TypeLibrary) -> None:
    """Replies echo the request ID and use FORTE's reason texts for failures."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP[:1])
        unknown_type = await client.request(
            "RES", '<Request ID="77" Action="CREATE"><FB Name="X" Type="NOPE"/></Request>')
        assert (unknown_type.request_id, unknown_type.reason) == ("77", "UNSUPPORTED_TYPE")
        assert (await client.request("NORES", '<Request ID="5" Action="START"/>')).reason \
            == "INVALID_DST"
        missing = await client.command("RES", "DELETE", '<FB Name="GHOST" Type="*"/>')
        assert missing.reason == "NO_SUCH_OBJECT"
        bad_action = await client.request("RES", '<Request ID="9" Action="FROB"/>')
        assert bad_action.reason == "UNSUPPORTED_CMD"
        bad_value = await client.command(
            "RES", "WRITE", '<Connection Source="DINT#abc" Destination="START.COLD"/>')
        assert bad_value.reason is not None


async def test_online_reconfiguration_keeps_running_counter(library: TypeLibrary) -> None:
    """Creating and deleting other FBs and connections never resets or stalls a counter."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP)
        await wait_until(lambda: cv(served) >= 2)
        ctr = served.device.resources["RES"].fbs["CTR"]
        for i in range(5):
            before = cv(served)
            await deploy(client, [
                ("RES", f'<Request ID="a{i}" Action="CREATE"><FB Name="X{i}" '
                        'Type="E_CTU"/></Request>'),
                ("RES", f'<Request ID="b{i}" Action="CREATE"><Connection Source="CYC.EO" '
                        f'Destination="X{i}.CU"/></Request>'),
                ("RES", f'<Request ID="c{i}" Action="WRITE"><Connection Source="7" '
                        f'Destination="X{i}.PV"/></Request>'),
            ])
            assert cv(served) >= before
            await wait_until(lambda before=before: cv(served) > before)
            assert served.device.resources["RES"].fbs["CTR"] is ctr
            await deploy(client, [
                ("RES", f'<Request ID="d{i}" Action="DELETE"><FB Name="X{i}" '
                        'Type="E_CTU"/></Request>'),
            ])
        before = cv(served)
        await wait_until(lambda: cv(served) > before + 2)
        assert [c.destination for c in served.device.resources["RES"].connections] == \
            ["CYC.START", "CTR.CU"]


async def test_watches_data_and_event_counts(library: TypeLibrary) -> None:
    """Watched data pins report values; watched event pins count events; $er resets."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP)
        for pin in ("CV", "CU", "CUO"):
            reply = await client.command("RES", "CREATE",
                                         f'<Watch Source="CTR.{pin}" Destination=""/>')
            assert reply.ok, reply.xml
        await wait_until(lambda: cv(served) >= 5)
        reply = await client.command("", "READ", "<Watches/>")
        root = SafeET.fromstring(reply.xml)
        res = root.find("Watches/Resource")
        assert res is not None
        assert res.get("name") == "RES"
        ports = {p.get("name"): p.find("Data") for p in res.iter("Port")}
        assert set(ports) == {"CV", "CU", "CUO"}
        data = {k: v for k, v in ports.items() if v is not None}
        assert data["CV"].get("forced") == "false"
        assert int(data["CU"].get("value", "0")) >= 3
        assert data["CU"].get("time") is not None
        assert int(data["CUO"].get("value", "0")) >= 3
        assert (await client.command("RES", "WRITE",
                                     '<Connection Source="$er" Destination="CTR.CU"/>')).ok
        mon = served.device.resources["RES"]
        assert mon.fbs["CTR"] is not None
        removed = await client.command("RES", "DELETE", '<Watch Source="CTR.CU" Destination=""/>')
        assert removed.ok
        again = await client.command("RES", "DELETE", '<Watch Source="CTR.CU" Destination=""/>')
        assert again.reason == "NO_SUCH_OBJECT"


async def test_force_output_holds_value_downstream(library: TypeLibrary) -> None:
    """A forced output keeps its value for connected FBs until the force is cleared."""
    app = [*COUNTER_APP[:-1],
           ("RES", '<Request ID="20" Action="CREATE"><FB Name="CONV" Type="UINT2UINT"/>'
                   '</Request>'),
           ("RES", '<Request ID="21" Action="CREATE"><Connection Source="CTR.CUO" '
                   'Destination="CONV.REQ"/></Request>'),
           ("RES", '<Request ID="22" Action="CREATE"><Connection Source="CTR.CV" '
                   'Destination="CONV.IN"/></Request>'),
           COUNTER_APP[-1]]
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, app)
        res = served.device.resources["RES"]
        await wait_until(lambda: cv(served) >= 2)
        forced = await client.command(
            "RES", "WRITE", '<Connection Source="999" Destination="CTR.CV" force="true"/>')
        assert forced.ok, forced.xml
        start = res.statistics().events_processed
        await wait_until(lambda: res.statistics().events_processed > start + 20)
        assert res.fbs["CONV"].get("OUT") == 999
        assert (await client.command("RES", "CREATE", '<Watch Source="CTR.CV"/>')).ok
        watches = SafeET.fromstring((await client.command("RES", "READ", "<Watches/>")).xml)
        data = watches.find(".//Data")
        assert data is not None
        assert data.get("forced") == "true"
        assert data.get("value") == "999"
        cleared = await client.command(
            "RES", "WRITE", '<Connection Source="0" Destination="CTR.CV" force="false"/>')
        assert cleared.ok
        await wait_until(lambda: res.fbs["CONV"].get("OUT") not in (999, 1000))


async def test_force_input_overrides_connection(library: TypeLibrary) -> None:
    """A forced input is what the FB samples, whatever its connection carries."""
    app = [*COUNTER_APP[:-1],
           ("RES", '<Request ID="20" Action="CREATE"><FB Name="CONV" Type="UINT2UINT"/>'
                   '</Request>'),
           ("RES", '<Request ID="21" Action="CREATE"><Connection Source="CTR.CUO" '
                   'Destination="CONV.REQ"/></Request>'),
           ("RES", '<Request ID="22" Action="CREATE"><Connection Source="CTR.CV" '
                   'Destination="CONV.IN"/></Request>'),
           COUNTER_APP[-1]]
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, app)
        res = served.device.resources["RES"]
        assert (await client.command(
            "RES", "WRITE", '<Connection Source="42" Destination="CONV.IN" force="true"/>')).ok
        before = cv(served)
        await wait_until(lambda: cv(served) > before + 3)
        assert res.fbs["CONV"].get("OUT") == 42
        assert (await client.command(
            "RES", "WRITE", '<Connection Source="0" Destination="CONV.IN" force="false"/>')).ok
        await wait_until(lambda: res.fbs["CONV"].get("OUT") > 42)


async def test_trigger_event_input_and_output(library: TypeLibrary) -> None:
    """`$e` delivers an event input, and on an output fires it to its destinations."""
    app = [
        ("", '<Request ID="1" Action="CREATE"><FB Name="RES" Type="EMB_RES"/></Request>'),
        ("RES", '<Request ID="2" Action="CREATE"><FB Name="A" Type="E_CTU"/></Request>'),
        ("RES", '<Request ID="3" Action="CREATE"><FB Name="B" Type="E_CTU"/></Request>'),
        ("RES", '<Request ID="4" Action="CREATE"><Connection Source="A.RO" '
                'Destination="B.CU"/></Request>'),
        ("RES", '<Request ID="5" Action="WRITE"><Connection Source="100" '
                'Destination="A.PV"/></Request>'),
        ("RES", '<Request ID="6" Action="WRITE"><Connection Source="100" '
                'Destination="B.PV"/></Request>'),
        ("RES", '<Request ID="7" Action="START"/>'),
    ]
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, app)
        res = served.device.resources["RES"]
        assert (await client.command("RES", "WRITE",
                                     '<Connection Source="$e" Destination="A.CU"/>')).ok
        await wait_until(lambda: res.fbs["A"].get("CV") == 1)
        assert (await client.command("RES", "WRITE",
                                     '<Connection Source="$e" Destination="A.RO"/>')).ok
        await wait_until(lambda: res.fbs["B"].get("CV") == 1)
        assert res.fbs["A"].get("CV") == 1


async def test_queries(library: TypeLibrary) -> None:
    """QUERY lists resources, FB instances, one FB, connections, FB types and data types."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP)
        fbs = SafeET.fromstring((await client.command(
            "RES", "QUERY", '<FB Name="*" Type="*"/>')).xml)
        assert {(f.get("Name"), f.get("Type")) for f in fbs.iter("FB")} == \
            {("CYC", "E_CYCLE"), ("CTR", "E_CTU")}
        one = SafeET.fromstring((await client.command(
            "RES", "QUERY", '<FB Name="CTR" Type="*"/>')).xml).find("FB")
        assert one is not None
        assert one.get("Type") == "E_CTU"
        status = SafeET.fromstring((await client.command(
            "RES", "QUERY", '<FB Name="CTR" Type="E_CTU"/>')).xml).find("FBStatus")
        assert status is not None
        assert status.get("Status") == "RUNNING"
        conns = SafeET.fromstring((await client.command(
            "RES", "QUERY", '<Connection Source="*" Destination="*"/>')).xml)
        assert len(list(conns.iter("Connection"))) == 2
        types = SafeET.fromstring((await client.command(
            "", "QUERY", '<FBType Name="*"/>')).xml).find("NameList")
        assert types is not None
        assert "E_CTU" in (types.text or "").split(",")
        dts = SafeET.fromstring((await client.command(
            "", "QUERY", '<DataType Name="*"/>')).xml).find("DTList")
        assert dts is not None
        assert "DINT" in (dts.text or "").split(",")
        resources = SafeET.fromstring((await client.command(
            "", "QUERY", '<FB Name="*" Type="*"/>')).xml)
        assert [f.get("Name") for f in resources.iter("FB")] == ["RES"]


async def test_fb_level_stop_discards_events_and_start_resumes(library: TypeLibrary) -> None:
    """Per-FB STOP discards events to that FB (FORTE), START resumes it; resources too."""
    async with serve_device(library) as served, client_for(served) as client:
        await deploy(client, COUNTER_APP)
        res = served.device.resources["RES"]
        assert (await client.command("RES", "STOP", '<FB Name="CTR" Type="E_CTU"/>')).ok
        frozen = res.read("CTR.CV")
        await asyncio.sleep(0.05)
        assert res.read("CTR.CV") == frozen  # cycles keep coming, the stopped FB ignores them
        assert (await client.command("RES", "START", '<FB Name="CTR" Type="E_CTU"/>')).ok
        await asyncio.sleep(0.05)
        assert res.read("CTR.CV") > frozen
        assert (await client.command("RES", "RESET", '<FB Name="CTR" Type="E_CTU"/>')).ok
        reply = await client.command("RES", "STOP", '<FB Name="START" Type="E_RESTART"/>')
        assert reply.reason == "INVALID_OPERATION"
        assert (await client.command("RES", "STOP")).ok
        assert res.state.value == "stopped"
        assert (await client.command("", "START", '<FB Name="RES" Type="EMB_RES"/>')).ok
        assert res.state.value == "running"


async def test_concurrent_connections(library: TypeLibrary) -> None:
    """Several clients at once each get their own replies."""
    async with serve_device(library) as served:
        async with client_for(served) as first:
            await deploy(first, COUNTER_APP[:1])

        async def one(i: int) -> None:
            async with client_for(served) as c:
                for j in range(10):
                    reply = await c.request(
                        "RES", f'<Request ID="{i}-{j}" Action="CREATE">'
                               f'<FB Name="F{i}_{j}" Type="E_CTU"/></Request>')
                    assert reply.ok
                    assert reply.request_id == f"{i}-{j}"

        async with asyncio.TaskGroup() as tg:
            for i in range(5):
                tg.create_task(one(i))
        assert len(served.device.resources["RES"].fbs) == 51  # 50 + START


async def test_split_and_coalesced_frames(library: TypeLibrary) -> None:
    """Requests cut into single bytes, or several in one write, are reassembled."""
    async with serve_device(library) as served:
        reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
        try:
            data = encode_request("", '<Request ID="1" Action="CREATE">'
                                      '<FB Name="RES" Type="EMB_RES"/></Request>')
            for b in data:
                writer.write(bytes([b]))
                await writer.drain()
            assert "Reason" not in (await read_frame(reader) or "Reason")
            two = b"".join(encode_request("RES", f'<Request ID="{i}" Action="CREATE">'
                                                 f'<FB Name="C{i}" Type="E_CTU"/></Request>')
                           for i in (2, 3))
            writer.write(two)
            await writer.drain()
            for i in (2, 3):
                text = await read_frame(reader)
                assert text is not None
                assert f'ID="{i}"' in text
                assert "Reason" not in text
        finally:
            writer.close()


async def test_bad_frame_closes_connection_server_survives(library: TypeLibrary) -> None:
    """A wrong tag closes that connection; the server keeps serving others."""
    async with serve_device(library) as served:
        reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
        writer.write(b"\x51\x00\x01x")
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        async with client_for(served) as client:
            assert (await client.command("", "QUERY", '<FB Name="*" Type="*"/>')).ok
        assert served.server.statistics().frame_errors == 1


async def test_bad_xml_gets_error_response(library: TypeLibrary) -> None:
    """Unparsable XML is answered with INVALID_OBJECT, and the connection stays usable."""
    async with serve_device(library) as served, client_for(served) as client:
        text = await client.request_raw("", "<Request ID=")
        assert 'Reason="INVALID_OBJECT"' in text
        assert (await client.command("", "QUERY", '<FB Name="*" Type="*"/>')).ok


async def test_incomplete_request_hits_deadline(library: TypeLibrary) -> None:
    """A request that never completes is dropped at the request deadline."""
    settings = ServerSettings(port=0, request_deadline_s=0.2)
    async with serve_device(library, settings) as served:
        reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
        writer.write(encode_frame("RES")[:3])
        await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()


async def test_allow_list_refuses_other_peers(library: TypeLibrary) -> None:
    """A peer outside the allow-list is disconnected before any request is read."""
    settings = ServerSettings(port=0, allow=("10.0.0.0/8",))
    async with serve_device(library, settings) as served:
        reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
        writer.write(encode_request("", '<Request ID="1" Action="QUERY"/>'))
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        assert served.server.statistics().connections_refused == 1
    allowed = ServerSettings(port=0, allow=("127.0.0.1",))
    async with serve_device(library, allowed) as served, client_for(served) as client:
        assert (await client.command("", "QUERY", '<FB Name="*" Type="*"/>')).ok


async def test_oversize_request_closes_connection(library: TypeLibrary) -> None:
    """A frame beyond the request size limit closes the connection."""
    settings = ServerSettings(port=0, max_request_bytes=100)
    async with serve_device(library, settings) as served:
        reader, writer = await asyncio.open_connection(served.server.host, served.server.port)
        writer.write(encode_request("", "<Request ID='1' Action='QUERY'>" + "x" * 200))
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()


def test_parse_address() -> None:
    """FORTE's -c forms: host:port, :port, bare host, [v6]:port; localhost means 127.0.0.1."""
    assert parse_address("localhost:61499") == ("127.0.0.1", 61499)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("0.0.0.0") == ("0.0.0.0", 61499)
    assert parse_address("[::1]:5000") == ("::1", 5000)
