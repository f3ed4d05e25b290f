"""Deploy one resource of a 4diac system as management commands, as 4diac IDE does.

`boot_commands(system, device, resource)` yields `(destination, request_xml)`
pairs in the order 4diac IDE sends them: CREATE the resource, then for each FB
mapped to it CREATE FB followed by WRITEs of its parameters (FBs inside mapped
subapps are named by their subapp path joined with dots), then the connections
of nested subapps before those of the enclosing network (events before data
within each), resolved through subapp interface pins, and finally START.
`write_fboot` stores them as a boot file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from testbed.errors import ConfigError, SourceLocation
from testbed.fourdiac.bootfile import write_boot_file
from testbed.fourdiac.sysfile import NetworkSpec, SubAppSpec, SystemSpec
from testbed.model import ConnectionSpec, FBInstanceSpec

__all__ = ["boot_commands", "write_fboot"]

_VARIABLE = re.compile(r"%(\w+)%")


def _attr(value: str) -> str:
    return '"' + escape(value, {'"': "&quot;"}) + '"'


@dataclass(slots=True)
class _Flat:
    """The resource's network flattened: real FBs, and edges between full pin names."""

    creates: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)
    segments: list[tuple[bool, list[tuple[str, str]]]] = field(default_factory=list)
    virtual: set[str] = field(default_factory=set)  # full names of subapps (their pins relay)
    subapp_params: list[tuple[str, str]] = field(default_factory=list)


class _Deployer:
    def __init__(self, system: SystemSpec, device: str, resource: str,
                 variables: Mapping[str, str]) -> None:
        self.system = system
        self.device = device
        self.resource = resource
        self.variables = variables
        self.flat = _Flat()
        self.where = SourceLocation(system.source or "<system>", field=f"{device}.{resource}")

    def value(self, text: str) -> str:
        return _VARIABLE.sub(lambda m: self.variables.get(m.group(1), m.group(0)), text)

    def subapp_network(self, sub: SubAppSpec, prefix: str) -> NetworkSpec:
        if sub.network is not None:
            return sub.network
        if sub.type_name is not None:
            raise ConfigError(f"typed subapp {prefix}{sub.name} ({sub.type_name}) cannot be "
                              "deployed yet: flatten it in 4diac IDE", self.where)
        target = f"{self.device}.{self.resource}.{prefix}{sub.name}"
        source = self.system.mapped_from(target)
        found = self.system.find_in_application(source) if source else None
        if not isinstance(found, SubAppSpec) or found.network is None:
            raise ConfigError(f"subapp {prefix}{sub.name} is mapped to the resource but its "
                              f"network is not in any application (mapping {source!r})",
                              self.where)
        return found.network

    def walk(self, net: NetworkSpec, prefix: str) -> None:
        """Record FB creations in order, and edge segments: nested levels first, events, data."""
        owner = prefix[:-1]
        for elem in net.elements:
            if isinstance(elem, FBInstanceSpec):
                writes = [(f"{prefix}{elem.name}.{pin}", self.value(v))
                          for pin, v in elem.parameters.items()]
                self.flat.creates.append((prefix + elem.name, elem.type_name, writes))
            else:
                full = prefix + elem.name
                self.flat.virtual.add(full)
                self.flat.subapp_params += [(f"{full}.{pin}", self.value(v))
                                            for pin, v in elem.parameters.items()]
                self.walk(self.subapp_network(elem, prefix), full + ".")

        def full_pin(pin: str) -> str:
            return prefix + pin if "." in pin else f"{owner}.{pin}"

        self.flat.segments.append(
            (True, [(full_pin(c.source), full_pin(c.destination)) for c in net.event_connections]))
        self.flat.segments.append(
            (False, [(full_pin(c.source), full_pin(c.destination)) for c in net.data_connections]))

    def edges(self, events: bool) -> list[tuple[str, str]]:
        return [e for is_event, seg in self.flat.segments if is_event == events for e in seg]

    def is_virtual(self, pin: str) -> bool:
        return pin.rpartition(".")[0] in self.flat.virtual

    def expand(self, pin: str, edges: list[tuple[str, str]], seen: set[str]) -> list[str]:
        """Real destinations reached from `pin` through subapp interface pins."""
        if not self.is_virtual(pin):
            return [pin]
        if pin in seen:
            return []
        seen.add(pin)
        out: list[str] = []
        for s, d in edges:
            if s == pin:
                out += self.expand(d, edges, seen)
        return out

    def connections(self) -> list[ConnectionSpec]:
        """Real-to-real connections in segment order, relayed through subapp pins."""
        all_edges = {True: self.edges(True), False: self.edges(False)}
        out: list[ConnectionSpec] = []
        for is_event, segment in self.flat.segments:
            for s, d in segment:
                if self.is_virtual(s):
                    continue  # relayed: emitted from the real source that feeds it
                for dest in self.expand(d, all_edges[is_event], set()):
                    out.append(ConnectionSpec(s, dest))
        return out


def boot_commands(system: SystemSpec, device: str, resource: str, *,
                  variables: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The `(destination, request_xml)` commands deploying `device.resource` of `system`.

    `variables` replaces `%NAME%` placeholders in parameter values.
    """
    dev = system.device(device)
    if dev is None:
        raise ConfigError(f"system {system.name} has no device {device!r}",
                          SourceLocation(system.source or "<system>"))
    res = dev.resource(resource)
    if res is None:
        raise ConfigError(f"device {device} has no resource {resource!r}",
                          SourceLocation(system.source or "<system>"))
    deployer = _Deployer(system, device, resource, variables or {})
    deployer.walk(res.network, "")
    data = deployer.edges(False)
    commands: list[tuple[str, str]] = []

    def request(dest: str, action: str, body: str = "") -> None:
        rid = len(commands) + 1
        if body:
            commands.append((dest, f'<Request ID="{rid}" Action="{action}">{body}</Request>'))
        else:
            commands.append((dest, f'<Request ID="{rid}" Action="{action}"/>'))

    request("", "CREATE", f"<FB Name={_attr(resource)} Type={_attr(res.type_name)} />")
    for name, type_name, writes in deployer.flat.creates:
        request(resource, "CREATE", f"<FB Name={_attr(name)} Type={_attr(type_name)} />")
        for pin, value in writes:
            request(resource, "WRITE",
                    f"<Connection Source={_attr(value)} Destination={_attr(pin)} />")
    for pin, value in deployer.flat.subapp_params:
        for dest in deployer.expand(pin, data, set()):
            request(resource, "WRITE",
                    f"<Connection Source={_attr(value)} Destination={_attr(dest)} />")
    for conn in deployer.connections():
        request(resource, "CREATE", f"<Connection Source={_attr(conn.source)} "
                                    f"Destination={_attr(conn.destination)} />")
    request(resource, "START")
    return commands


def write_fboot(path: str | Path, system: SystemSpec, device: str, resource: str, *,
                variables: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Write the boot file of `device.resource`; returns the commands written."""
    commands = boot_commands(system, device, resource, variables=variables)
    write_boot_file(path, commands)
    return commands
