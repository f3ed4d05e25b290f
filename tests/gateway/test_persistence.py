"""The deployment journal: compacted to FORTE boot-file lines that rebuild the application."""

from __future__ import annotations

from pathlib import Path

from testbed.fourdiac.bootfile import load_boot_file
from testbed.fourdiac.commands import CommandExecutor
from testbed.gateway.persistence import DeploymentJournal, write_atomically
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device


def req(action: str, body: str = "") -> str:
    return f'<Request ID="1" Action="{action}">{body}</Request>' if body else \
        f'<Request ID="1" Action="{action}"/>'


def fb(name: str, type_name: str = "E_CTU") -> str:
    return f'<FB Name="{name}" Type="{type_name}"/>'


def conn(src: str, dst: str) -> str:
    return f'<Connection Source="{src}" Destination="{dst}"/>'


def journaled(library: TypeLibrary) -> tuple[Device, CommandExecutor, DeploymentJournal]:
    device = Device("d", library=library, clock=VirtualClock())
    journal = DeploymentJournal()
    return device, CommandExecutor(device, on_change=journal.record), journal


def run(executor: CommandExecutor, lines: list[tuple[str, str]]) -> None:
    for dest, xml in lines:
        response = executor.execute(dest, xml)
        assert response.ok, (xml, response)


def test_deleted_fb_takes_its_parameters_and_connections(library: TypeLibrary) -> None:
    """Deleting an FB removes its creation, parameters and connections from the journal."""
    _device, executor, journal = journaled(library)
    run(executor, [
        ("", req("CREATE", fb("RES", "EMB_RES"))),
        ("RES", req("CREATE", fb("A"))),
        ("RES", req("CREATE", fb("B"))),
        ("RES", req("WRITE", conn("5", "A.PV"))),
        ("RES", req("WRITE", conn("6", "B.PV"))),
        ("RES", req("CREATE", conn("START.COLD", "A.CU"))),
        ("RES", req("CREATE", conn("A.CUO", "B.CU"))),
        ("RES", req("CREATE", conn("A.CV", "B.PV"))),
        ("RES", req("START")),
        ("RES", req("DELETE", fb("B"))),
        ("RES", req("WRITE", conn("7", "A.PV"))),
        ("RES", req("CREATE", '<Watch Source="A.CV" Destination=""/>')),
    ])
    lines = journal.text().splitlines()
    assert lines == [
        ';<Request ID="1" Action="CREATE"><FB Name="RES" Type="EMB_RES"/></Request>',
        'RES;<Request ID="2" Action="CREATE"><FB Name="A" Type="E_CTU"/></Request>',
        'RES;<Request ID="3" Action="WRITE"><Connection Source="7" Destination="A.PV"/>'
        '</Request>',
        'RES;<Request ID="4" Action="CREATE"><Connection Source="START.COLD" '
        'Destination="A.CU"/></Request>',
        'RES;<Request ID="5" Action="START"/>',
    ]


def test_stop_and_resource_delete_compact(library: TypeLibrary) -> None:
    """STOP takes back START; deleting a resource removes everything inside it."""
    _device, executor, journal = journaled(library)
    run(executor, [
        ("", req("CREATE", fb("R1", "EMB_RES"))),
        ("", req("CREATE", fb("R2", "EMB_RES"))),
        ("R1", req("CREATE", fb("A"))),
        ("R2", req("CREATE", fb("A"))),
        ("R1", req("START")),
        ("R2", req("START")),
        ("R1", req("STOP")),
        ("", req("KILL", fb("R2", "EMB_RES"))),
        ("", req("DELETE", fb("R2", "EMB_RES"))),
    ])
    assert journal.text().splitlines() == [
        ';<Request ID="1" Action="CREATE"><FB Name="R1" Type="EMB_RES"/></Request>',
        'R1;<Request ID="2" Action="CREATE"><FB Name="A" Type="E_CTU"/></Request>',
    ]


def test_journal_rebuilds_the_same_application(library: TypeLibrary, tmp_path: Path) -> None:
    """Loading the persisted file on a fresh device gives the same FBs, connections, values."""
    device, executor, journal = journaled(library)
    run(executor, [
        ("", req("CREATE", fb("RES", "EMB_RES"))),
        ("RES", req("CREATE", fb("My.Dotted", "E_CTU"))),
        ("RES", req("CREATE", fb("S", "STRING2STRING"))),
        ("RES", req("WRITE", conn("'a &lt;b&gt; &amp; &quot;c&quot;'", "S.IN"))),
        ("RES", req("WRITE", conn("3", "My.Dotted.PV"))),
        ("RES", req("CREATE", conn("START.COLD", "My.Dotted.CU"))),
        ("RES", req("START")),
    ])
    path = tmp_path / "deployed.fboot"
    write_atomically(path, journal.text())
    fresh = Device("d2", library=library, clock=VirtualClock())
    assert load_boot_file(fresh, path).ok
    old, new = device.resources["RES"], fresh.resources["RES"]
    assert {n: f.type_name for n, f in new.fbs.items()} == \
        {n: f.type_name for n, f in old.fbs.items()}
    assert new.connections == old.connections
    assert new.fbs["S"].get("IN") == 'a <b> & "c"'
    assert new.fbs["My.Dotted"].get("PV") == 3
    assert new.state.value == "running"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
