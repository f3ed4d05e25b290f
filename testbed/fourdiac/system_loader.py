"""Load a 4diac system (`.sys`) as a scripting-API network.

Every resource of every device is deployed on one in-process device exactly as
4diac IDE would deploy it (the same management commands `fboot_writer` produces);
paths `App.Sub.FB` reach the mapped instances through the system's mappings.
Applications that no resource maps run together in one in-process resource named
after the application. Connections between resources go through communication
FBs, as in 4diac.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from testbed.errors import ConfigError, SourceLocation
from testbed.fourdiac.commands import CommandExecutor
from testbed.fourdiac.fboot_writer import boot_commands
from testbed.fourdiac.sysfile import DeviceSpec, ResourceSpec, SystemSpec, read_system

if TYPE_CHECKING:
    from testbed.api import Network
    from testbed.runtime.device import Device

__all__ = ["network_from_system"]

log = structlog.get_logger(__name__)

_LOCAL_DEVICE = "__local__"


def read_virtual_dns(path: Path) -> dict[str, str]:
    """The active collection of a 4diac IDE `virtualDNS.dns` file (`%NAME%` values)."""
    from defusedxml import ElementTree as SafeET

    try:
        root = SafeET.parse(path).getroot()
    except (OSError, SafeET.ParseError) as exc:
        raise ConfigError(f"cannot read virtual DNS file: {exc}", SourceLocation(str(path))) \
            from exc
    collections = [c for c in root if c.tag == "availableDNSCollections"]
    active = root.get("activeVirtualDNS", "")
    index = 0
    if active.startswith("//@availableDNSCollections."):
        index = int(active.rsplit(".", 1)[1] or 0)
    if not collections or index >= len(collections):
        return {}
    return {e.get("name", ""): e.get("value", "") for e in collections[index]
            if e.tag == "virtualDNSEntries"}


def network_from_system(device: Device, path: Path) -> Network:
    """Build every application of the system file on `device` (see `testbed.api.load`)."""
    from testbed.api import Network

    system = read_system(path)
    dns = path.parent / "virtualDNS.dns"
    variables = read_virtual_dns(dns) if dns.is_file() else {}
    aliases: dict[str, tuple[str, str]] = {}
    resource_names: dict[tuple[str, str], str] = {}
    taken: set[str] = set()
    for dev in system.devices:
        for res in dev.resources:
            name = res.name if res.name not in taken else f"{dev.name}.{res.name}"
            taken.add(name)
            resource_names[(dev.name, res.name)] = name
    for dev in system.devices:
        for res in dev.resources:
            _deploy(device, system, dev.name, res.name, resource_names[(dev.name, res.name)],
                    path, variables)
    for m in system.mappings:
        parts = m.destination.split(".")
        if len(parts) < 3:
            continue
        target = resource_names.get((parts[0], parts[1]))
        if target is not None:
            aliases[m.source] = (target, ".".join(parts[2:]))
    mapped_apps = {m.source.split(".")[0] for m in system.mappings}
    for app in system.applications:
        if app.name in mapped_apps:
            continue
        local = SystemSpec(
            name=system.name, applications=system.applications,
            devices=(DeviceSpec(_LOCAL_DEVICE, "FORTE_PC",
                                (ResourceSpec(app.name, "EMB_RES", app.network),)),),
            source=system.source)
        name = app.name if app.name not in taken else f"{_LOCAL_DEVICE}.{app.name}"
        taken.add(name)
        _deploy(device, local, _LOCAL_DEVICE, app.name, name, path, variables)
        deployed = device.resources[name]
        for fb_name in deployed.fbs:
            if fb_name != deployed.restart_fb:
                aliases[f"{app.name}.{fb_name}"] = (name, fb_name)
    return Network(device, aliases=aliases)


def _deploy(device: Device, system: SystemSpec, dev: str, res: str, as_name: str,
            path: Path, variables: dict[str, str]) -> None:
    """Execute the deployment commands of one resource (without its START)."""
    executor = CommandExecutor(device)
    commands = boot_commands(system, dev, res, variables=variables)
    for n, (destination, request) in enumerate(commands, start=1):
        if 'Action="START"' in request:
            continue  # `testbed.load` starts the whole device once everything exists
        if destination == res:
            destination = as_name
        elif destination == "" and n == 1 and as_name != res:
            request = request.replace(f'Name="{res}"', f'Name="{as_name}"', 1)
        response = executor.execute(destination, request)
        if not response.ok:
            raise ConfigError(f"deploying {dev}.{res}: {response.reason}: {response.detail} "
                              f"({request})", SourceLocation(str(path)))
