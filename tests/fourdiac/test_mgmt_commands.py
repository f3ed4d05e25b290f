"""Management commands on a virtual-clock device: monitoring, forcing, triggers, change records."""

from __future__ import annotations

from defusedxml import ElementTree as SafeET

from testbed.fourdiac.commands import AppliedChange, CommandExecutor
from testbed.runtime.device import Device


def req(action: str, body: str = "", rid: str = "1") -> str:
    return f'<Request ID="{rid}" Action="{action}">{body}</Request>' if body else \
        f'<Request ID="{rid}" Action="{action}"/>'


def ok(executor: CommandExecutor, dest: str, xml: str) -> str:
    response = executor.execute(dest, xml)
    assert response.ok, (xml, response)
    return response.to_xml()


def counter_chain(vdevice: Device) -> tuple[CommandExecutor, list[AppliedChange]]:
    """RES with A (E_CTU) -> B (UINT2UINT) on A.CUO, A.CV -> B.IN; started."""
    changes: list[AppliedChange] = []
    ex = CommandExecutor(vdevice, on_change=changes.append)
    ok(ex, "", req("CREATE", '<FB Name="RES" Type="EMB_RES"/>'))
    for line in ['<FB Name="A" Type="E_CTU"/>', '<FB Name="B" Type="UINT2UINT"/>',
                 '<Connection Source="A.CUO" Destination="B.REQ"/>',
                 '<Connection Source="A.CV" Destination="B.IN"/>']:
        ok(ex, "RES", req("CREATE", line))
    ok(ex, "RES", req("WRITE", '<Connection Source="1000" Destination="A.PV"/>'))
    ok(ex, "RES", req("START"))
    return ex, changes


def pulse(vdevice: Device, n: int = 1) -> None:
    res = vdevice.resources["RES"]
    for _ in range(n):
        res.inject("A.CU")
        res.run_until_idle()


def watches(ex: CommandExecutor) -> dict[tuple[str, str], dict[str, str]]:
    root = SafeET.fromstring(ok(ex, "", req("READ", "<Watches/>")))
    out: dict[tuple[str, str], dict[str, str]] = {}
    for fb in root.iter("FB"):
        for port in fb.iter("Port"):
            data = port.find("Data")
            assert data is not None
            out[(fb.get("name", ""), port.get("name", ""))] = dict(data.attrib)
    return out


def test_forced_output_reapplied_after_every_event(vdevice: Device) -> None:
    """A forced CV stays forced in the FB and downstream while the counter keeps counting."""
    ex, _ = counter_chain(vdevice)
    pulse(vdevice, 2)
    ok(ex, "RES", req("WRITE", '<Connection Source="77" Destination="A.CV" force="true"/>'))
    pulse(vdevice, 3)
    res = vdevice.resources["RES"]
    assert res.fbs["A"].get("CV") == 77
    assert res.fbs["B"].get("OUT") == 77
    ok(ex, "RES", req("WRITE", '<Connection Source="0" Destination="A.CV" force="false"/>'))
    pulse(vdevice)
    assert res.fbs["A"].get("CV") == 78  # counts on from the forced value, as FORTE's FB would
    assert res.fbs["B"].get("OUT") == 78


def test_forced_input_survives_reconnection(vdevice: Device) -> None:
    """Deleting and recreating the connection to a forced input keeps the force."""
    ex, _ = counter_chain(vdevice)
    ok(ex, "RES", req("WRITE", '<Connection Source="5" Destination="B.IN" force="true"/>'))
    ok(ex, "RES", req("DELETE", '<Connection Source="A.CV" Destination="B.IN"/>'))
    ok(ex, "RES", req("CREATE", '<Connection Source="A.CV" Destination="B.IN"/>'))
    pulse(vdevice, 3)
    res = vdevice.resources["RES"]
    assert res.fbs["B"].get("OUT") == 5
    ok(ex, "RES", req("WRITE", '<Connection Source="0" Destination="B.IN" force="false"/>'))
    pulse(vdevice)
    assert res.fbs["B"].get("OUT") == 4


def test_force_on_unconnected_input_then_connect(vdevice: Device) -> None:
    """A forced unconnected input can still be connected (no false fan-in error)."""
    ex, _ = counter_chain(vdevice)
    ok(ex, "RES", req("DELETE", '<Connection Source="A.CV" Destination="B.IN"/>'))
    ok(ex, "RES", req("WRITE", '<Connection Source="9" Destination="B.IN" force="true"/>'))
    ok(ex, "RES", req("CREATE", '<Connection Source="A.CV" Destination="B.IN"/>'))
    pulse(vdevice)
    assert vdevice.resources["RES"].fbs["B"].get("OUT") == 9


def test_event_watch_counts_from_creation_and_resets(vdevice: Device) -> None:
    """Event pins count while watched; `$er` zeroes; removing the last one stops tracing."""
    ex, _ = counter_chain(vdevice)
    pulse(vdevice, 2)
    ok(ex, "RES", req("CREATE", '<Watch Source="A.CU" Destination=""/>'))
    ok(ex, "RES", req("CREATE", '<Watch Source="B.CNF" Destination=""/>'))
    ok(ex, "RES", req("CREATE", '<Watch Source="A.CV" Destination=""/>'))
    pulse(vdevice, 3)
    seen = watches(ex)
    assert seen[("A", "CU")]["value"] == "3"
    assert seen[("B", "CNF")]["value"] == "3"
    assert seen[("A", "CV")] == {"value": "5", "forced": "false"}
    ok(ex, "RES", req("WRITE", '<Connection Source="$ER" Destination="A.CU"/>'))
    pulse(vdevice)
    assert watches(ex)[("A", "CU")]["value"] == "1"
    a = vdevice.resources["RES"].fbs["A"]
    assert type(a) is a.TRACED
    for pin in ("A.CU", "B.CNF"):
        ok(ex, "RES", req("DELETE", f'<Watch Source="{pin}" Destination=""/>'))
    assert type(a) is a.PLAIN  # only a data watch left: back to the fast classes


def test_deleting_an_fb_drops_its_watches(vdevice: Device) -> None:
    """Watches of a deleted FB disappear from READ Watches."""
    ex, _ = counter_chain(vdevice)
    ok(ex, "RES", req("CREATE", '<Watch Source="B.OUT" Destination=""/>'))
    ok(ex, "RES", req("DELETE", '<FB Name="B" Type="*"/>'))
    assert watches(ex) == {}


def test_watch_values_are_escaped(vdevice: Device) -> None:
    """STRING values with XML specials come back as well-formed XML, quoted as FORTE prints."""
    ex = CommandExecutor(vdevice)
    ok(ex, "", req("CREATE", '<FB Name="RES" Type="EMB_RES"/>'))
    ok(ex, "RES", req("CREATE", '<FB Name="S" Type="STRING2STRING"/>'))
    ok(ex, "RES", req("WRITE", '<Connection Source="\'a&lt;&amp;&gt;&quot;\'" '
                               'Destination="S.IN"/>'))
    ok(ex, "RES", req("CREATE", '<Watch Source="S.IN" Destination=""/>'))
    assert watches(ex)[("S", "IN")]["value"] == "'a<&>\"'"


def test_trigger_on_stopped_resource_and_unknown_pin(vdevice: Device) -> None:
    """`$e` on an unknown pin is NO_SUCH_OBJECT; on a data pin too."""
    ex, _ = counter_chain(vdevice)
    for pin in ("A.NOPE", "A.PV"):
        response = ex.execute("RES", req("WRITE", f'<Connection Source="$e" Destination="{pin}"/>'))
        assert response.reason == "NO_SUCH_OBJECT", response


def test_start_fb_of_resource_cannot_be_deleted(vdevice: Device) -> None:
    """The resource's own E_RESTART (START) is not deletable through management."""
    ex, _ = counter_chain(vdevice)
    response = ex.execute("RES", req("DELETE", '<FB Name="START" Type="E_RESTART"/>'))
    assert response.reason == "INVALID_OPERATION"


def test_change_records_cover_application_not_monitoring(vdevice: Device) -> None:
    """on_change sees creations, parameters and state changes, never watches or forces."""
    ex, changes = counter_chain(vdevice)
    ok(ex, "RES", req("CREATE", '<Watch Source="A.CV" Destination=""/>'))
    ok(ex, "RES", req("WRITE", '<Connection Source="3" Destination="A.PV" force="true"/>'))
    ok(ex, "RES", req("WRITE", '<Connection Source="$e" Destination="A.CU"/>'))
    assert [(c.action, c.kind, c.name) for c in changes] == [
        ("CREATE", "resource", "RES"), ("CREATE", "fb", "A"), ("CREATE", "fb", "B"),
        ("CREATE", "connection", "A.CUO"), ("CREATE", "connection", "A.CV"),
        ("WRITE", "parameter", "A.PV"), ("START", "state", "RES")]


def test_malformed_and_unknown_requests(vdevice: Device) -> None:
    """Bad XML and non-Request roots are INVALID_OBJECT; unknown actions UNSUPPORTED_CMD."""
    ex = CommandExecutor(vdevice)
    assert ex.execute("", "<Request").reason == "INVALID_OBJECT"
    assert ex.execute("", "<Response ID='1'/>").reason == "INVALID_OBJECT"
    assert ex.execute("", req("FLY")).reason == "UNSUPPORTED_CMD"
    assert ex.execute("", req("READ", '<Connection Source="x.y"/>')).reason == \
        "UNSUPPORTED_CMD"
